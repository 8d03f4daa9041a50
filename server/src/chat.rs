//! Where a session's messages go ([`Surface`]) and the one post / update path for Slack and
//! Teams, so the session runner never branches on the platform.

use crate::app::Shared;
use crate::card::Card;
use crate::error::{Result, ServerError};
use crate::slack::api::SlackApi;
use crate::teams::api::TeamsApi;

/// A conversation a session writes to. Posting the first message of a channel surface
/// turns it into a thread, so everything after lands in that thread.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Surface {
    /// A Slack channel (id or `#name`), optionally a thread in it.
    Slack {
        channel: String,
        thread_ts: Option<String>,
    },
    /// A Teams conversation, optionally replying to one activity.
    Teams {
        service_url: String,
        conversation: String,
        reply_to: Option<String>,
    },
    /// A Teams channel with no thread yet (runbook automation posts proactively).
    TeamsChannel {
        service_url: String,
        channel_id: String,
    },
    /// Not posted anywhere (no runbook channel and no default).
    Nowhere,
}

/// A message that can be updated later.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MsgRef {
    Slack {
        channel: String,
        ts: String,
    },
    Teams {
        service_url: String,
        conversation: String,
        id: String,
    },
    Nowhere,
}

impl Shared {
    fn slack_api<'a>(&'a self, token: &'a str, base: &'a str) -> SlackApi<'a> {
        SlackApi {
            http: &self.http,
            base,
            token,
        }
    }

    /// Posts `card` to `surface`, threading the surface on its first post.
    pub(crate) async fn post(&self, surface: &mut Surface, card: &Card) -> Result<MsgRef> {
        let r = self.resolved();
        match surface {
            Surface::Slack { channel, thread_ts } => {
                let (Some(slack), Some(token)) = (&r.config.slack, &r.slack_bot_token) else {
                    return Err(not_configured(
                        "slack",
                        "chat.postMessage",
                        "slack.bot_token",
                    ));
                };
                let (ch, ts) = self
                    .slack_api(token, &slack.api_base_url)
                    .post(channel, thread_ts.as_deref(), card)
                    .await?;
                *channel = ch.clone();
                if thread_ts.is_none() {
                    *thread_ts = Some(ts.clone());
                }
                Ok(MsgRef::Slack { channel: ch, ts })
            }
            Surface::Teams {
                service_url,
                conversation,
                reply_to,
            } => {
                let id = self
                    .teams_api(&r)?
                    .post(service_url, conversation, reply_to.as_deref(), card)
                    .await?;
                Ok(MsgRef::Teams {
                    service_url: service_url.clone(),
                    conversation: conversation.clone(),
                    id,
                })
            }
            Surface::TeamsChannel {
                service_url,
                channel_id,
            } => {
                let (conv, id) = self
                    .teams_api(&r)?
                    .post_to_channel(service_url, channel_id, card)
                    .await?;
                let msg = MsgRef::Teams {
                    service_url: service_url.clone(),
                    conversation: conv.clone(),
                    id,
                };
                *surface = Surface::Teams {
                    service_url: service_url.clone(),
                    conversation: conv,
                    reply_to: None,
                };
                Ok(msg)
            }
            Surface::Nowhere => Ok(MsgRef::Nowhere),
        }
    }

    /// Replaces a posted message.
    pub(crate) async fn update(&self, msg: &MsgRef, card: &Card) -> Result<()> {
        let r = self.resolved();
        match msg {
            MsgRef::Slack { channel, ts } => {
                let (Some(slack), Some(token)) = (&r.config.slack, &r.slack_bot_token) else {
                    return Err(not_configured("slack", "chat.update", "slack.bot_token"));
                };
                self.slack_api(token, &slack.api_base_url)
                    .update(channel, ts, card)
                    .await
            }
            MsgRef::Teams {
                service_url,
                conversation,
                id,
            } => {
                self.teams_api(&r)?
                    .update(service_url, conversation, id, card)
                    .await
            }
            MsgRef::Nowhere => Ok(()),
        }
    }

    /// A Slack message only `user` sees.
    pub(crate) async fn slack_ephemeral(
        &self,
        channel: &str,
        user: &str,
        thread_ts: Option<&str>,
        text: &str,
    ) -> Result<()> {
        let r = self.resolved();
        let (Some(slack), Some(token)) = (&r.config.slack, &r.slack_bot_token) else {
            return Err(not_configured(
                "slack",
                "chat.postEphemeral",
                "slack.bot_token",
            ));
        };
        self.slack_api(token, &slack.api_base_url)
            .ephemeral(channel, user, thread_ts, text)
            .await
    }

    fn teams_api<'a>(&'a self, r: &'a crate::config::Resolved) -> Result<TeamsApi<'a>> {
        let Some(t) = &r.config.teams else {
            return Err(not_configured("teams", "post", "teams"));
        };
        Ok(TeamsApi {
            http: &self.http,
            app_id: &t.app_id,
            password: r.teams_password.as_deref(),
            token_url: &t.token_url,
            scope: &t.token_scope,
            cache: &self.teams_token,
        })
    }
}

fn not_configured(platform: &'static str, method: &str, key: &str) -> ServerError {
    ServerError::Chat {
        platform,
        method: method.to_owned(),
        reason: format!("`{key}` is not configured"),
    }
}
