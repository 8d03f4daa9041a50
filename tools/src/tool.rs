//! The `Tool` trait, its type-erased form, and the registry that validates, runs, measures
//! and budgets every call.

use crate::budget::{count_tokens, fit};
use crate::context::ToolContext;
use crate::error::{Result, ToolError};
use crate::evidence::EvidenceRef;
use crate::schema::{compact_schema, schema_for, validate};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// How a tool output reads for a model.
pub trait Render {
    /// Compact text with at most `max_items` entries per list, most relevant first, and a
    /// count of what was left out. `max_items == 0` renders counts only.
    fn render(&self, max_items: usize) -> String;
    /// Evidence this output can be cited by.
    fn evidence(&self) -> Vec<EvidenceRef> {
        Vec::new()
    }
}

/// A typed, read-only tool.
pub trait Tool: Send + Sync + 'static {
    /// Name the model calls it by.
    const NAME: &'static str;
    /// Arguments (the model sees their JSON schema).
    type Args: DeserializeOwned + JsonSchema + Send;
    /// Output: JSON for people and evals, [`Render`] for the model.
    type Output: Serialize + Render + Send + Sync + 'static;
    /// What the tool does, written for a model; one or two sentences.
    fn description() -> &'static str;
    /// Run the tool.
    fn call(
        &self,
        ctx: &ToolContext,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// A type-erased output: rendering, JSON and the typed value for analyzers.
pub trait ErasedOutput: Send + Sync {
    /// See [`Render::render`].
    fn render(&self, max_items: usize) -> String;
    /// See [`Render::evidence`].
    fn evidence(&self) -> Vec<EvidenceRef>;
    /// Full JSON.
    fn to_json(&self) -> Value;
    /// The typed output, for downcasting.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Serialize + Render + Send + Sync + 'static> ErasedOutput for T {
    fn render(&self, max_items: usize) -> String {
        Render::render(self, max_items)
    }
    fn evidence(&self) -> Vec<EvidenceRef> {
        Render::evidence(self)
    }
    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A tool with its types erased, as the registry holds it.
pub trait DynTool: Send + Sync {
    /// Tool name.
    fn name(&self) -> &'static str;
    /// Description for the model.
    fn description(&self) -> &'static str;
    /// Full JSON schema of the arguments (used for validation).
    fn schema(&self) -> Value;
    /// Deserialise the (already validated) arguments and run.
    fn call_value<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Arc<dyn ErasedOutput>>>;
}

struct Erased<T: Tool>(T);

impl<T: Tool> DynTool for Erased<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn description(&self) -> &'static str {
        T::description()
    }
    fn schema(&self) -> Value {
        schema_for::<T::Args>()
    }
    fn call_value<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Arc<dyn ErasedOutput>>> {
        Box::pin(async move {
            let args: T::Args = serde_json::from_value(args)
                .map_err(|e| ToolError::InvalidArgs(format!("{}: {e}", T::NAME)))?;
            let out = self.0.call(ctx, args).await?;
            Ok(Arc::new(out) as Arc<dyn ErasedOutput>)
        })
    }
}

/// What the model is told about a tool.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSchema {
    /// Tool name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Compact JSON schema of the arguments.
    pub parameters: Value,
}

/// A model-visible error in a call result.
#[derive(Debug, Clone, Serialize)]
pub struct CallError {
    /// `invalid_args`, `not_found`, `forbidden` or `upstream`.
    pub kind: String,
    /// What went wrong and what to do.
    pub message: String,
}

/// The result of one call through the registry.
#[derive(Clone, Serialize)]
pub struct ToolResult {
    /// Unique id of this call (cited by findings).
    pub call_id: String,
    /// Tool name.
    pub tool: String,
    /// Arguments as given.
    pub args: Value,
    /// Wall time of the call in milliseconds.
    pub duration_ms: u64,
    /// Tokens of `text` (o200k_base).
    pub tokens: usize,
    /// What the model reads: the budgeted rendering, or the error.
    pub text: String,
    /// Evidence the output can be cited by.
    pub evidence: Vec<EvidenceRef>,
    /// Full output as JSON (not budgeted), `null` on error.
    pub json: Value,
    /// The model-visible error, if the call failed.
    pub error: Option<CallError>,
    #[serde(skip)]
    output: Option<Arc<dyn ErasedOutput>>,
}

impl std::fmt::Debug for ToolResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolResult")
            .field("call_id", &self.call_id)
            .field("tool", &self.tool)
            .field("tokens", &self.tokens)
            .field("error", &self.error)
            .field("text", &self.text)
            .finish()
    }
}

impl ToolResult {
    /// The typed output, e.g. `result.output::<ListOutput>()`.
    pub fn output<T: 'static>(&self) -> Option<&T> {
        self.output.as_ref()?.as_any().downcast_ref::<T>()
    }
}

/// The set of tools a session can call.
#[derive(Clone, Default)]
pub struct Registry {
    tools: BTreeMap<&'static str, Arc<dyn DynTool>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Every tool in this crate.
    pub fn standard() -> Self {
        let mut r = Registry::new();
        r.register(crate::k8s::tools::ListTool);
        r.register(crate::k8s::tools::DescribeTool);
        r.register(crate::k8s::tools::EventsTool);
        r.register(crate::logs::LogsTool);
        r.register(crate::prom::MetricsTool);
        r.register(crate::gpu::GpuTool);
        r.register(crate::github::GitHubTool);
        r.register(crate::runbooks::RunbookTool);
        r
    }

    /// Add a tool.
    pub fn register<T: Tool>(&mut self, tool: T) {
        self.tools.insert(T::NAME, Arc::new(Erased(tool)));
    }

    /// Tool names.
    pub fn names(&self) -> Vec<&'static str> {
        self.tools.keys().copied().collect()
    }

    /// Name, description and compact schema of every tool, for the model's first request.
    pub fn schemas(&self) -> Vec<ToolSchema> {
        self.tools
            .values()
            .map(|t| ToolSchema {
                name: t.name().to_string(),
                description: t.description().to_string(),
                parameters: compact_schema(t.schema()),
            })
            .collect()
    }

    /// Validate the arguments, run the tool under a span, measure it and fit its output to
    /// the per-tool budget. Model-visible failures come back as a result with `error` set;
    /// only fatal ones are `Err`.
    pub async fn call(&self, ctx: &ToolContext, name: &str, args: Value) -> Result<ToolResult> {
        let call_id = format!("call_{}", uuid::Uuid::new_v4().simple());
        let span = tracing::info_span!("tool_call", call_id = %call_id, tool = %name);
        let started = Instant::now();
        let outcome = async {
            let tool = self.tools.get(name).ok_or_else(|| {
                ToolError::InvalidArgs(format!(
                    "unknown tool `{name}`; available tools: {}",
                    self.names().join(", ")
                ))
            })?;
            let args = if args.is_null() {
                Value::Object(Default::default())
            } else {
                args.clone()
            };
            validate(&tool.schema(), &args)?;
            tool.call_value(ctx, args).await
        }
        .instrument(span.clone())
        .await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let budget = ctx.budgets.per_tool_tokens;
        let result = match outcome {
            Ok(out) => {
                let render = |n: usize| out.render(n);
                let (text, tokens) = fit(&render, budget);
                ToolResult {
                    call_id,
                    tool: name.to_string(),
                    args,
                    duration_ms,
                    tokens,
                    text,
                    evidence: out.evidence(),
                    json: out.to_json(),
                    error: None,
                    output: Some(out),
                }
            }
            Err(e) if e.is_model_visible() => {
                let text = format!("error ({}): {e}", e.kind());
                ToolResult {
                    call_id,
                    tool: name.to_string(),
                    args,
                    duration_ms,
                    tokens: count_tokens(&text),
                    error: Some(CallError {
                        kind: e.kind().to_string(),
                        message: e.to_string(),
                    }),
                    text,
                    evidence: Vec::new(),
                    json: Value::Null,
                    output: None,
                }
            }
            Err(e) => {
                span.in_scope(|| tracing::error!(error = %e, "fatal tool error"));
                return Err(e);
            }
        };
        span.in_scope(|| {
            tracing::info!(
                duration_ms = result.duration_ms,
                tokens = result.tokens,
                error = result.error.as_ref().map(|e| e.kind.as_str()),
                "tool call finished"
            )
        });
        Ok(result)
    }
}
