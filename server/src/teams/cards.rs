//! Cards as Adaptive Cards (schema 1.4) with Approve / Deny `Action.Submit` buttons whose
//! data carries only the opaque approval id.

use serde_json::{Value, json};

use crate::card::{Card, clip};

/// Teams renders a subset of Markdown and HTML-like `<at>` mentions; escaping `& < >` keeps
/// cluster text from becoming mentions or markup.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Adaptive Card JSON of a card.
pub(crate) fn adaptive(card: &Card) -> Value {
    let mut body: Vec<Value> = Vec::new();
    if !card.title.is_empty() {
        body.push(json!({ "type": "TextBlock", "text": escape(&clip(&card.title, 200)), "weight": "Bolder", "size": "Medium", "wrap": true }));
    }
    for s in &card.sections {
        if let Some(h) = &s.heading {
            body.push(json!({ "type": "TextBlock", "text": escape(h), "weight": "Bolder", "wrap": true, "spacing": "Medium" }));
        }
        if !s.lines.is_empty() {
            let text = s
                .lines
                .iter()
                .map(|l| escape(&clip(l, 1000)))
                .collect::<Vec<_>>()
                .join("\n\n");
            body.push(json!({ "type": "TextBlock", "text": text, "wrap": true }));
        }
        if let Some(code) = &s.code {
            body.push(json!({ "type": "TextBlock", "text": escape(code), "fontType": "Monospace", "wrap": true, "size": "Small" }));
        }
    }
    let mut card_json = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
    });
    if let Some(id) = &card.approval_id {
        card_json["actions"] = json!([
            { "type": "Action.Submit", "title": "Approve", "style": "positive", "data": { "medic_action": "approve", "approval_id": id } },
            { "type": "Action.Submit", "title": "Deny", "style": "destructive", "data": { "medic_action": "deny", "approval_id": id } }
        ]);
    }
    card_json
}

/// A message activity carrying the card.
pub(crate) fn activity(card: &Card) -> Value {
    json!({
        "type": "message",
        "text": escape(&clip(&card.fallback, 300)),
        "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "content": adaptive(card) }],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::card::Section;

    #[test]
    fn buttons_carry_only_the_id_and_text_is_escaped() {
        let card = Card {
            title: "t".into(),
            sections: vec![Section::new(None, vec!["<at>everyone</at>".into()])],
            approval_id: Some("ap_9".into()),
            fallback: "f".into(),
        };
        let a = activity(&card);
        let content = &a["attachments"][0]["content"];
        assert_eq!(
            content["actions"][0]["data"],
            json!({"medic_action": "approve", "approval_id": "ap_9"})
        );
        assert!(!a.to_string().contains("<at>"));
    }
}
