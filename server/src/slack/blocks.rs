//! Cards as Block Kit. Every string is escaped (`&`, `<`, `>`), so cluster or model text can
//! never become `<!channel>`, a user mention or a disguised link.

use serde_json::{Value, json};

use crate::card::{Card, clip};

/// Action id of the Approve button.
pub(crate) const APPROVE: &str = "medic_approve";
/// Action id of the Deny button.
pub(crate) const DENY: &str = "medic_deny";

/// Slack's three control characters, escaped as its docs require.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": clip(&text, 2900), "verbatim": true })
}

/// The Block Kit blocks of a card.
pub(crate) fn blocks(card: &Card) -> Value {
    let mut out: Vec<Value> = Vec::new();
    if !card.title.is_empty() {
        out.push(json!({ "type": "section", "text": mrkdwn(format!("*{}*", escape(&clip(&card.title, 200)))) }));
    }
    for s in &card.sections {
        let mut text = String::new();
        if let Some(h) = &s.heading {
            text.push_str(&format!("*{}*\n", escape(h)));
        }
        text.push_str(
            &s.lines
                .iter()
                .map(|l| escape(l))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        if let Some(code) = &s.code {
            // A literal ``` inside the diff would close the fence early.
            text.push_str(&format!("\n```{}```", escape(&code.replace("```", "'''"))));
        }
        if !text.trim().is_empty() {
            out.push(json!({ "type": "section", "text": mrkdwn(text) }));
        }
    }
    if let Some(id) = &card.approval_id {
        out.push(json!({
            "type": "actions",
            "block_id": "medic_approval",
            "elements": [
                { "type": "button", "action_id": APPROVE, "style": "primary", "value": id,
                  "text": { "type": "plain_text", "text": "Approve" } },
                { "type": "button", "action_id": DENY, "style": "danger", "value": id,
                  "text": { "type": "plain_text", "text": "Deny" } }
            ]
        }));
    }
    // Slack accepts at most 50 blocks per message.
    out.truncate(50);
    Value::Array(out)
}

/// The notification text of a card, escaped.
pub(crate) fn fallback(card: &Card) -> String {
    escape(&clip(&card.fallback, 300))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::card::Section;

    #[test]
    fn cluster_text_cannot_mention_or_link() {
        let card = Card {
            title: "<!channel> pod crashed".into(),
            sections: vec![Section::new(
                Some("log"),
                vec!["see <https://evil.example|docs> & <@U123>".into()],
            )],
            approval_id: Some("ap_1".into()),
            fallback: "<!here>".into(),
        };
        let b = blocks(&card);
        let text = b.to_string();
        assert!(
            !text.contains("<!channel>") && !text.contains("<https") && !text.contains("<@U123>"),
            "{text}"
        );
        assert!(text.contains("&lt;!channel&gt;"));
        assert!(text.contains("&amp;"));
        assert_eq!(fallback(&card), "&lt;!here&gt;");
        let actions = &b.as_array().unwrap().last().unwrap()["elements"];
        assert_eq!(actions[0]["value"], "ap_1");
        assert_eq!(actions[1]["action_id"], DENY);
    }
}
