//! SubjectAccessReview: may this Kubernetes identity perform this operation?

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::identity::KubeIdentity;
use crate::plan::AccessCheck;

/// The API server's answer for one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessVerdict {
    /// True when the operation is allowed.
    pub allowed: bool,
    /// The authorizer's reason (may be empty).
    #[serde(default)]
    pub reason: String,
}

/// Reviews whether `who` may perform `check` on `cluster`.
///
/// Native `async fn`-style trait; use [`SharedReviewer`] (via [`shared`]) where a trait
/// object is needed.
pub trait AccessReviewer: Send + Sync + 'static {
    /// One SubjectAccessReview. An `Err` means the review could not be made (network,
    /// timeout, unknown cluster), which callers treat as "not allowed".
    fn review(
        &self,
        cluster: &str,
        who: &KubeIdentity,
        check: &AccessCheck,
    ) -> impl Future<Output = Result<AccessVerdict>> + Send;
}

/// The object-safe form of [`AccessReviewer`].
pub trait DynAccessReviewer: Send + Sync {
    /// See [`AccessReviewer::review`].
    fn review_boxed<'a>(
        &'a self,
        cluster: &'a str,
        who: &'a KubeIdentity,
        check: &'a AccessCheck,
    ) -> Pin<Box<dyn Future<Output = Result<AccessVerdict>> + Send + 'a>>;
}

impl<T: AccessReviewer> DynAccessReviewer for T {
    fn review_boxed<'a>(
        &'a self,
        cluster: &'a str,
        who: &'a KubeIdentity,
        check: &'a AccessCheck,
    ) -> Pin<Box<dyn Future<Output = Result<AccessVerdict>> + Send + 'a>> {
        Box::pin(self.review(cluster, who, check))
    }
}

/// A type-erased, shareable reviewer.
pub type SharedReviewer = Arc<dyn DynAccessReviewer>;

/// Wraps a reviewer for [`crate::ApprovalBook::open`].
pub fn shared(reviewer: impl AccessReviewer) -> SharedReviewer {
    Arc::new(reviewer)
}

/// Production reviewer: POSTs `authorization.k8s.io/v1` SubjectAccessReviews through one
/// `kube::Client` per cluster. The client's own credentials need `create` on
/// `subjectaccessreviews`.
#[derive(Clone)]
pub struct KubeAccessReviewer {
    clients: HashMap<String, kube::Client>,
    timeout: Duration,
}

impl std::fmt::Debug for KubeAccessReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeAccessReviewer")
            .field("clusters", &self.clients.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl KubeAccessReviewer {
    /// A reviewer with no clusters and a 10 s timeout per review.
    pub fn new() -> Self {
        KubeAccessReviewer {
            clients: HashMap::new(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Adds (or replaces) the client for a cluster.
    pub fn with_cluster(mut self, cluster: impl Into<String>, client: kube::Client) -> Self {
        self.clients.insert(cluster.into(), client);
        self
    }

    /// Sets the timeout of one review.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Default for KubeAccessReviewer {
    fn default() -> Self {
        KubeAccessReviewer::new()
    }
}

/// The SubjectAccessReview object for one check.
pub fn subject_access_review(who: &KubeIdentity, check: &AccessCheck) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(who.user.clone()),
            groups: Some(who.groups.clone()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(check.verb.clone()),
                group: Some(check.group.clone()),
                resource: Some(check.resource.clone()),
                subresource: check.subresource.clone(),
                namespace: check.namespace.clone(),
                name: check.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

impl AccessReviewer for KubeAccessReviewer {
    async fn review(
        &self,
        cluster: &str,
        who: &KubeIdentity,
        check: &AccessCheck,
    ) -> Result<AccessVerdict> {
        let client = self
            .clients
            .get(cluster)
            .ok_or_else(|| Error::UnknownCluster {
                cluster: cluster.to_owned(),
            })?;
        let api: Api<SubjectAccessReview> = Api::all(client.clone());
        let sar = subject_access_review(who, check);
        let fail = |message: String| Error::AccessReview {
            cluster: cluster.to_owned(),
            message,
        };
        let created = tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &sar))
            .await
            .map_err(|_| fail(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| fail(e.to_string()))?;
        let status = created
            .status
            .ok_or_else(|| fail("the response has no status".into()))?;
        let mut reason = status.reason.unwrap_or_default();
        if let Some(err) = status.evaluation_error.filter(|e| !e.is_empty()) {
            reason = if reason.is_empty() {
                format!("evaluation error: {err}")
            } else {
                format!("{reason}; evaluation error: {err}")
            };
        }
        Ok(AccessVerdict {
            allowed: status.allowed && status.denied != Some(true),
            reason,
        })
    }
}
