//! Microsoft Teams (Bot Framework): JWT authentication of incoming activities, the
//! activity handler, Adaptive Cards, and the connector client for replies.

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod cards;
pub(crate) mod handler;
