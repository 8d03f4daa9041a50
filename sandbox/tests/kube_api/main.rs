//! The sandbox through the kube crate: list/watch/patch/evict/SAR/impersonation/409/403.
//! One test binary, split by concern.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod reads;
mod writes;

use k8s_openapi::api::core::v1::Pod;

fn names(list: &[Pod]) -> Vec<String> {
    list.iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect()
}
