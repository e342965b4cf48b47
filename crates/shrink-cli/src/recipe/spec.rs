//! Reading and validating a recipe file: every check runs before any step does, and every error
//! is one line naming `FILE:LINE`.
use super::steps::{self, StepKind};
use anyhow::{anyhow, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    recipe: Spanned<RawMeta>,
    model: Spanned<RawModel>,
    data: Spanned<RawData>,
    #[serde(default)]
    quick: Option<Spanned<RawQuick>>,
    #[serde(default)]
    step: Vec<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: Spanned<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    #[serde(default)]
    arch: Option<Spanned<String>>,
    #[serde(default)]
    file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    path: Spanned<String>,
    #[serde(default)]
    mean: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    std: Option<Spanned<Vec<f64>>>,
}

/// How `--quick` shrinks the data (every step then sees the smaller dataset).
#[derive(Deserialize, Clone, Copy, Debug, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Quick {
    /// Training examples kept (the first ones of the train split).
    #[serde(default = "default_train_examples")]
    pub train_examples: usize,
    /// Test examples kept (the first ones of the test split).
    #[serde(default = "default_test_examples")]
    pub test_examples: usize,
}

type RawQuick = Quick;

fn default_train_examples() -> usize {
    2000
}
fn default_test_examples() -> usize {
    500
}

impl Default for Quick {
    fn default() -> Self {
        Quick { train_examples: default_train_examples(), test_examples: default_test_examples() }
    }
}

/// Where a step's input model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The `[model] file`.
    Source,
    /// The model written by the step at this index.
    Step(usize),
}

/// One validated step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Unique name (`name = ...`, else the kind, numbered when repeated).
    pub name: String,
    pub kind: StepKind,
    /// The step's flags (keys as written, `-` for `_`), `--quick` overrides already applied
    /// when the plan is quick.
    pub params: BTreeMap<String, toml::Value>,
    /// The model the step reads.
    pub input: Option<Input>,
    /// The reference model of `compare`.
    pub against: Option<Input>,
    /// Line of the step's `[[step]]` header.
    pub line: usize,
}

/// A validated recipe, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub file: PathBuf,
    pub name: String,
    pub title: String,
    pub description: String,
    pub arch: Option<String>,
    /// `[model] file`, resolved against the recipe's directory.
    pub model_file: Option<PathBuf>,
    /// `[data] path`, resolved against the recipe's directory.
    pub data: PathBuf,
    pub mean: Option<Vec<f64>>,
    pub std: Option<Vec<f64>>,
    pub quick: Option<Quick>,
    pub steps: Vec<Step>,
}

/// Maps byte offsets of the recipe text to `FILE:LINE` prefixes.
pub struct Source<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// 1-based line of byte offset `at`.
    pub fn line(&self, at: usize) -> usize {
        self.text[..at.min(self.text.len())].matches('\n').count() + 1
    }

    /// An error at `span`'s first line.
    pub fn err(&self, span: Range<usize>, msg: impl std::fmt::Display) -> anyhow::Error {
        self.err_line(self.line(span.start), msg)
    }

    /// An error at `line`.
    pub fn err_line(&self, line: usize, msg: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{}:{line}: {}", self.file.display(), msg.to_string().replace('\n', " "))
    }

    /// Line of `key = ...` in the table that starts at `span` (up to the next table header),
    /// else the table's first line.
    pub fn key_line(&self, span: &Range<usize>, key: &str) -> usize {
        let region = &self.text[span.start.min(self.text.len())..];
        let mut offset = span.start;
        for (i, l) in region.split_inclusive('\n').enumerate() {
            let t = l.trim_start();
            if i > 0 && t.starts_with('[') {
                break;
            }
            let t = t.trim_start_matches('"');
            if let Some(rest) = t.strip_prefix(key) {
                if rest.trim_start().trim_start_matches('"').trim_start().starts_with('=') {
                    return self.line(offset);
                }
            }
            offset += l.len();
        }
        self.line(span.start)
    }
}

/// Reads and validates `file`; with `quick` the steps' `quick` overrides are applied.
pub fn load(file: &Path, quick: bool) -> Result<Plan> {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow!("recipe `{}`: {e}", file.display()))?;
    parse(file, &text, quick)
}

/// Validates recipe `text` (read from `file`, which relative paths are resolved against).
pub fn parse(file: &Path, text: &str, quick: bool) -> Result<Plan> {
    let src = Source { file, text };
    let raw: RawRecipe = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| src.line(s.start)).unwrap_or(1);
        src.err_line(line, e.message().trim())
    })?;
    let base = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let resolve_at = |p: &Spanned<String>| -> Result<PathBuf> {
        let p = expand_env(p.get_ref()).map_err(|e| src.err(p.span(), e))?;
        Ok(if Path::new(&p).is_absolute() { PathBuf::from(p) } else { base.join(p) })
    };

    let name = raw.recipe.get_ref().name.get_ref().trim().to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(
            src.err(raw.recipe.get_ref().name.span(), "[recipe] name must be letters, digits, `-` or `_`")
        );
    }
    let model = raw.model.get_ref();
    if let Some(arch) = &model.arch {
        if !shrink_ir::zoo::ARCHS.contains(&arch.get_ref().as_str()) {
            return Err(src.err(
                arch.span(),
                format!(
                    "unknown architecture `{}` (known: {})",
                    arch.get_ref(),
                    shrink_ir::zoo::ARCHS.join(", ")
                ),
            ));
        }
    }
    let model_file = match &model.file {
        Some(f) => {
            let path = resolve_at(f)?;
            if !path.is_file() {
                return Err(src.err(f.span(), format!("model file `{}` does not exist", path.display())));
            }
            Some(path)
        }
        None => None,
    };
    if model.arch.is_none() && model_file.is_none() {
        return Err(
            src.err(raw.model.span(), "[model] needs `arch` (a zoo architecture) or `file` (a model file)")
        );
    }
    let data = raw.data.get_ref();
    let data_path = resolve_at(&data.path)?;
    if !data_path.exists() {
        return Err(src.err(data.path.span(), format!("data `{}` does not exist", data_path.display())));
    }
    for (key, v) in [("mean", &data.mean), ("std", &data.std)] {
        if let Some(v) = v {
            if v.get_ref().is_empty()
                || v.get_ref().iter().any(|x| !x.is_finite() || (key == "std" && *x <= 0.0))
            {
                return Err(src.err(
                    v.span(),
                    format!("[data] {key} must be a non-empty list of finite numbers (std > 0)"),
                ));
            }
        }
    }
    let quick_cfg = raw.quick.as_ref().map(|q| *q.get_ref()).unwrap_or_default();
    if let Some(q) = &raw.quick {
        if quick_cfg.train_examples == 0 || quick_cfg.test_examples == 0 {
            return Err(src.err(q.span(), "[quick] example counts must be positive"));
        }
    }
    if raw.step.is_empty() {
        return Err(src.err_line(src.line(text.len()), "the recipe has no [[step]]"));
    }

    let mut plan = Plan {
        file: file.to_path_buf(),
        name,
        title: raw.recipe.get_ref().title.clone().unwrap_or_default(),
        description: raw.recipe.get_ref().description.clone().unwrap_or_default(),
        arch: model.arch.as_ref().map(|a| a.get_ref().clone()),
        model_file,
        data: data_path,
        mean: data.mean.as_ref().map(|v| v.get_ref().clone()),
        std: data.std.as_ref().map(|v| v.get_ref().clone()),
        quick: quick.then_some(quick_cfg),
        steps: Vec::new(),
    };
    for (i, table) in raw.step.iter().enumerate() {
        let step = parse_step(&src, &plan, i, table, quick)?;
        plan.steps.push(step);
    }
    Ok(plan)
}

/// Keys every step may hold besides its command's flags.
const STEP_KEYS: [&str; 5] = ["kind", "name", "from", "against", "quick"];

fn parse_step(
    src: &Source,
    plan: &Plan,
    i: usize,
    table: &Spanned<toml::Table>,
    quick: bool,
) -> Result<Step> {
    let span = table.span();
    let t = table.get_ref();
    let line = src.line(span.start);
    let at = |key: &str| src.key_line(&span, key);
    let str_key = |key: &str| -> Result<Option<String>> {
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(src.err_line(at(key), format!("`{key}` must be a string"))),
        }
    };
    let Some(kind_name) = str_key("kind")? else {
        return Err(src.err_line(
            line,
            format!("step {} has no `kind` (one of {})", i + 1, StepKind::NAMES.join(", ")),
        ));
    };
    let kind = StepKind::parse(&kind_name).map_err(|e| src.err_line(at("kind"), e))?;
    let name = match str_key("name")? {
        Some(n) => n,
        None => {
            let same = plan.steps.iter().filter(|s| s.kind == kind).count();
            if same == 0 {
                kind.name().to_string()
            } else {
                format!("{}-{}", kind.name(), same + 1)
            }
        }
    };
    if plan.steps.iter().any(|s| s.name == name) {
        return Err(src.err_line(line, format!("two steps are named `{name}`; give one a `name = ...`")));
    }
    let what = format!("step {} ({name})", i + 1);
    let resolve =
        |key: &str, target: Option<String>| -> Result<Option<Input>> {
            let Some(target) = target else { return Ok(None) };
            if target == "model" {
                return match plan.model_file {
                    Some(_) => Ok(Some(Input::Source)),
                    None => Err(src
                        .err_line(at(key), format!("{what}: `{key} = \"model\"` but [model] names no file"))),
                };
            }
            match plan.steps.iter().position(|s| s.name == target) {
                Some(j) if plan.steps[j].kind.produces_model() => Ok(Some(Input::Step(j))),
                Some(_) => Err(src.err_line(
                    at(key),
                    format!("{what}: step `{target}` writes no model that `{key}` could read"),
                )),
                None => Err(src.err_line(
                    at(key),
                    format!("{what}: `{key} = \"{target}\"` names no earlier step (steps run in file order)"),
                )),
            }
        };
    let latest = plan
        .steps
        .iter()
        .rposition(|s| s.kind.produces_model())
        .map(Input::Step)
        .or(plan.model_file.as_ref().map(|_| Input::Source));
    let first = plan.model_file.as_ref().map(|_| Input::Source).or(plan
        .steps
        .iter()
        .position(|s| s.kind.produces_model())
        .map(Input::Step));
    let mut input = resolve("from", str_key("from")?)?;
    let mut against = resolve("against", str_key("against")?)?;
    if kind.consumes_model() {
        input = input.or(latest);
        if input.is_none() {
            return Err(src.err_line(
                line,
                format!("{what} needs a model, but no earlier step writes one and [model] names no file"),
            ));
        }
    } else if input.is_some() {
        return Err(
            src.err_line(at("from"), format!("{what}: a {} step reads no model (`from`)", kind.name()))
        );
    }
    if kind == StepKind::Compare {
        against = against.or(first);
        if against.is_none() || against == input {
            return Err(
                src.err_line(line, format!("{what} needs two different models (`against` and `from`)"))
            );
        }
    } else if against.is_some() {
        return Err(src.err_line(at("against"), format!("{what}: only compare steps take `against`")));
    }
    if kind == StepKind::Train && plan.arch.is_none() && plan.model_file.is_none() {
        return Err(src.err_line(line, format!("{what}: train needs [model] arch or file")));
    }

    let add = |params: &mut BTreeMap<String, toml::Value>, table: &toml::Table, prefix: &str| -> Result<()> {
        for (key, value) in table {
            if prefix.is_empty() && STEP_KEYS.contains(&key.as_str()) {
                continue;
            }
            let flag = key.replace('_', "-");
            let line = at(key);
            steps::check_key(kind, &params_grid(t), &flag)
                .map_err(|e| src.err_line(line, format!("{what}: {prefix}{e}")))?;
            steps::flag_values(&flag, value)
                .map_err(|e| src.err_line(line, format!("{what}: {prefix}{e}")))?;
            params.insert(flag, value.clone());
        }
        Ok(())
    };
    let mut params: BTreeMap<String, toml::Value> = BTreeMap::new();
    add(&mut params, t, "")?;
    let mut overrides = BTreeMap::new();
    match t.get("quick") {
        None => {}
        Some(toml::Value::Table(q)) => add(&mut overrides, q, "quick: ")?,
        Some(_) => return Err(src.err_line(at("quick"), format!("{what}: `quick` must be a table of flags"))),
    }
    let mut step = Step { name, kind, params, input, against, line };
    // Every flag value is checked by the command's own parser now, not when the step runs, in
    // both forms of the recipe.
    steps::dry_parse(plan, &step).map_err(|e| src.err_line(line, format!("{what}: {e}")))?;
    let mut quick_step = step.clone();
    quick_step.params.extend(overrides);
    steps::dry_parse(plan, &quick_step)
        .map_err(|e| src.err_line(at("quick"), format!("{what}: quick: {e}")))?;
    if quick {
        step = quick_step;
    }
    Ok(step)
}

/// The `grid` of a sweep step (`quant` or `prune`), empty for other steps.
fn params_grid(t: &toml::Table) -> String {
    t.get("grid").and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

/// Expands a leading `$NAME/` or `${NAME}/` (e.g. `$SHRINK_SHARED/models/...`) from the
/// environment.
fn expand_env(p: &str) -> Result<String> {
    let Some(rest) = p.strip_prefix('$') else { return Ok(p.to_string()) };
    let (name, tail) = match rest.strip_prefix('{') {
        Some(r) => r.split_once('}').unwrap_or((r, "")),
        None => match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        },
    };
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(format!("{v}{tail}")),
        _ => Err(anyhow!("`${name}` is not set (the path `{p}` needs it)")),
    }
}
