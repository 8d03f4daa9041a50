//! Pods, workloads (with rollout history) and nodes, re-exported from their files.

pub use super::nodes::*;
pub use super::pods::*;
pub use super::workloads::*;
