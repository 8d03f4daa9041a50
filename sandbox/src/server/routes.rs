//! Request paths → what they address.

use crate::catalog::Catalog;

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Version,
    Health,
    CoreVersions,
    Groups,
    GroupVersion { group: String, version: String },
    OpenApiV2,
    OpenApiV3,
    OpenApiV3Path(String),
    Resource(ResourcePath),
    Unknown,
}

/// A resource path: `/api/v1/namespaces/ai/pods/x/log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourcePath {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
    pub sub: String,
}

pub(crate) fn parse(path: &str, catalog: &Catalog) -> Route {
    let segs: Vec<&str> = path
        .trim_end_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["openapi", "v2"] | ["swagger.json"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3Path(rest.join("/")),
        ["api", version] => Route::GroupVersion {
            group: String::new(),
            version: (*version).into(),
        },
        ["apis", group, version] => Route::GroupVersion {
            group: (*group).into(),
            version: (*version).into(),
        },
        ["api", version, rest @ ..] => resource("", version, rest, catalog),
        ["apis", group, version, rest @ ..] => resource(group, version, rest, catalog),
        _ => Route::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str], catalog: &Catalog) -> Route {
    let owned = |s: Option<&&str>| s.map(|s| s.to_string()).unwrap_or_default();
    // `namespaces/<ns>/<plural>...` unless it is the Namespace object's own subresource.
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && group.is_empty() && matches!(rest[2], "status" | "finalize"));
    let (namespace, tail) = if namespaced_path {
        (rest[1].to_string(), &rest[2..])
    } else {
        (String::new(), rest)
    };
    if tail.is_empty() || tail.len() > 3 {
        return Route::Unknown;
    }
    let plural = tail[0];
    let Some(rt) = catalog.by_plural(group, version, plural) else {
        return Route::Unknown;
    };
    if !rt.namespaced && !namespace.is_empty() {
        return Route::Unknown;
    }
    Route::Resource(ResourcePath {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        namespace,
        name: owned(tail.get(1)),
        sub: owned(tail.get(2)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn rp(g: &str, p: &str, ns: &str, n: &str, s: &str) -> Route {
        Route::Resource(ResourcePath {
            group: g.into(),
            version: "v1".into(),
            plural: p.into(),
            namespace: ns.into(),
            name: n.into(),
            sub: s.into(),
        })
    }

    #[test]
    fn parses_paths() {
        let c = Catalog::with_crds([]);
        assert_eq!(parse("/api/v1/pods", &c), rp("", "pods", "", "", ""));
        assert_eq!(
            parse("/api/v1/namespaces/ai/pods/x/log", &c),
            rp("", "pods", "ai", "x", "log")
        );
        assert_eq!(
            parse("/api/v1/namespaces/ai", &c),
            rp("", "namespaces", "", "ai", "")
        );
        assert_eq!(
            parse("/api/v1/namespaces/ai/status", &c),
            rp("", "namespaces", "", "ai", "status")
        );
        assert_eq!(
            parse("/apis/apps/v1/namespaces/ai/deployments/d/scale", &c),
            rp("apps", "deployments", "ai", "d", "scale")
        );
        assert_eq!(parse("/api/v1/nodes/n1", &c), rp("", "nodes", "", "n1", ""));
        assert_eq!(parse("/api/v1/namespaces/ai/nodes", &c), Route::Unknown);
        assert_eq!(
            parse("/apis/apps/v1", &c),
            Route::GroupVersion {
                group: "apps".into(),
                version: "v1".into()
            }
        );
    }
}
