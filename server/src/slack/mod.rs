//! Slack: request verification, the Events API and interactivity handlers, Block Kit
//! rendering and the Web API client.

pub(crate) mod api;
pub(crate) mod blocks;
pub(crate) mod events;
pub(crate) mod verify;

/// The `X-Slack-Signature` value (`v0=…`) for a timestamp and raw body, computed the way
/// Slack signs requests (for tests and tools that sign requests).
pub fn slack_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    verify::sign(secret, timestamp, body)
}
