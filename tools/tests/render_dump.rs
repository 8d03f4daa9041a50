//! Dev aid: print what the model reads for a list of calls (`B=<bundle> CALLS='[[tool, args], …]'`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
use medic_tools::Registry;
#[tokio::test]
#[ignore = "dev aid: prints renderings for CALLS"]
async fn print() {
    let env = common::start(&std::env::var("B").unwrap_or("gpu-xid79".into())).await;
    let reg = Registry::standard();
    let calls: Vec<(String, serde_json::Value)> =
        serde_json::from_str(&std::env::var("CALLS").unwrap()).unwrap();
    for (n, a) in calls {
        let r = reg.call(&env.ctx, &n, a).await.unwrap();
        println!(
            "=== {n} tokens={} ms={}\n{}",
            r.tokens, r.duration_ms, r.text
        );
    }
}
