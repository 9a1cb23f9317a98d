//! jq filters (through `jaq`, a jq implementation in Rust) for the REST adapter's templates
//! and mappings: compiled once when the adapter is built, run on `serde_json` values.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde::Deserialize;
use serde_json::Value;

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

/// Most values one filter may produce (guards against runaway filters such as `repeat`).
const MAX_OUTPUTS: usize = 100_000;

/// A compiled jq filter.
pub(crate) struct Program {
    filter: Filter,
    source: String,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Program").field(&self.source).finish()
    }
}

impl Program {
    /// Parses and compiles `code` with jq's standard library.
    ///
    /// # Errors
    /// A message saying what could not be parsed or which filter is undefined.
    pub fn compile(code: &str) -> Result<Self, String> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(&arena, File { code, path: () })
            .map_err(|errors| {
                let parts: Vec<String> = errors.iter().map(|(_, e)| format!("{e:?}")).collect();
                format!("cannot parse the jq filter: {}", parts.join("; "))
            })?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| {
                let names: Vec<String> = errors
                    .iter()
                    .flat_map(|(_, undefined)| undefined.iter())
                    .map(|(name, what)| format!("{name} ({what:?})"))
                    .collect();
                format!("undefined in the jq filter: {}", names.join(", "))
            })?;
        Ok(Self {
            filter,
            source: code.to_owned(),
        })
    }

    /// Every value the filter produces for `input`, in order.
    ///
    /// # Errors
    /// The first runtime error (jq's message), or too many outputs.
    pub fn run(&self, input: &Value) -> Result<Vec<Value>, String> {
        let input = Val::deserialize(input.clone()).map_err(|e| format!("input: {e}"))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut values = Vec::new();
        for output in self.filter.id.run((ctx, input)).map(unwrap_valr) {
            match output {
                Ok(value) => {
                    let text = value.to_string();
                    let json = serde_json::from_str(&text).map_err(|e| {
                        format!("the filter produced {text}, which is not JSON: {e}")
                    })?;
                    values.push(json);
                    if values.len() > MAX_OUTPUTS {
                        return Err(format!(
                            "the filter produced more than {MAX_OUTPUTS} values"
                        ));
                    }
                }
                // jq errors carry a value: a string message shows as itself.
                Err(error) => return Err(error.to_string()),
            }
        }
        Ok(values)
    }

    /// The one value the filter produces for `input`.
    ///
    /// # Errors
    /// A runtime error, no value, or more than one.
    pub fn one(&self, input: &Value) -> Result<Value, String> {
        let mut values = self.run(input)?;
        match values.len() {
            1 => Ok(values.remove(0)),
            0 => Err("the filter produced no value".to_owned()),
            n => Err(format!(
                "the filter produced {n} values where one was expected"
            )),
        }
    }

    /// The value the filter produces, or `None` when it produces nothing or `null`.
    ///
    /// # Errors
    /// A runtime error or more than one value.
    pub fn optional(&self, input: &Value) -> Result<Option<Value>, String> {
        let mut values = self.run(input)?;
        match values.len() {
            0 => Ok(None),
            1 => Ok(Some(values.remove(0)).filter(|v| !v.is_null())),
            n => Err(format!(
                "the filter produced {n} values where one was expected"
            )),
        }
    }
}
