//! Settings from the command line (`--set section.key=value`, repeatable), applied to the
//! config file's text and checked by the same loader as the file, one override at a time,
//! so a refusal names the override that caused it.

use super::file::{parse, ConfigError, FileConfig};

/// Parses `text` as [`parse`] does, with each `section.key=value` of `sets` applied in order
/// (a TOML value: `0.6`, `true`, `"1m"`, `[1, 2]`; anything else is taken as a string; a key
/// with no section is a top-level key such as `data_dir`). A refusal names the override
/// whose key the loader's error names (else every override).
pub fn parse_with_overrides(text: &str, name: &str, sets: &[String]) -> Result<FileConfig, ConfigError> {
    if sets.is_empty() {
        return parse(text, name);
    }
    let toml_error = |message: String| ConfigError::Toml { name: name.to_string(), message };
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| toml_error(e.to_string()))?;
    for set in sets {
        let refuse = |why: String| ConfigError::Invalid(format!("--set {set}: {why}"));
        let (path, value) = set.split_once('=').ok_or_else(|| refuse("expected section.key=value".into()))?;
        let value = value_of(value.trim());
        let mut keys: Vec<&str> = path.trim().split('.').collect();
        let key = keys.pop().filter(|k| !k.is_empty()).ok_or_else(|| refuse("no key".into()))?;
        let mut table = &mut doc;
        for section in keys {
            let entry =
                table.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table =
                entry.as_table_mut().ok_or_else(|| refuse(format!("{section} is a value, not a section")))?;
        }
        table.insert(key.to_string(), value);
    }
    let merged = toml::to_string(&doc).map_err(|e| toml_error(e.to_string()))?;
    parse(&merged, name).map_err(|e| {
        let message = e.to_string();
        let path = |set: &String| set.split_once('=').map_or(set.clone(), |(p, _)| p.trim().to_string());
        let key = |set: &String| path(set).rsplit('.').next().unwrap_or_default().to_string();
        let names: [&dyn Fn(&String) -> bool; 3] = [
            &|set| message.contains(&path(set)),
            &|set| message.contains(&format!("unknown field `{}`", key(set))),
            &|set| message.contains(&format!("`{}`", key(set))),
        ];
        let culprit = names
            .iter()
            .find_map(|named| sets.iter().find(|set| named(set)))
            .map_or_else(|| sets.join(" --set "), String::clone);
        ConfigError::Invalid(format!("--set {culprit}: {message}"))
    })
}

/// A command-line value as TOML, or as a string when it is not one (`mio`, `1m`).
fn value_of(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_CONFIG;

    fn with(sets: &[&str]) -> Result<FileConfig, ConfigError> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        parse_with_overrides(DEFAULT_CONFIG, "the embedded config", &sets)
    }

    #[test]
    fn overrides_set_values_of_every_type() {
        let file =
            with(&["shards.transport=mio", "shards.count=2", "shards.cores=[0, 1]", "data_dir=/tmp/x"])
                .unwrap();
        assert_eq!(file.shards.transport, "mio");
        assert_eq!((file.shards.count, file.shards.cores.clone()), (2, vec![0, 1]));
        assert_eq!(file.data_dir.as_deref(), Some(std::path::Path::new("/tmp/x")));
        let quoted = with(&["shards.transport=\"glommio\""]).unwrap();
        assert_eq!(quoted.shards.transport, "glommio");
    }

    #[test]
    fn an_unknown_key_or_a_bad_value_is_refused_naming_the_override() {
        let refusal = |sets: &[&str]| with(sets).err().expect("refused").to_string();
        let unknown = refusal(&["shards.count=1", "shards.bogus=1"]);
        assert!(unknown.starts_with("--set shards.bogus=1: ") && unknown.contains("bogus"), "{unknown}");
        let bad = refusal(&["shards.transport=dpdk"]);
        assert!(
            bad.starts_with("--set shards.transport=dpdk: ") && bad.contains("shards.transport"),
            "{bad}"
        );
        let typed = refusal(&["shards.count=many"]);
        assert!(typed.starts_with("--set shards.count=many: "), "{typed}");
        assert!(refusal(&["shards"]).contains("expected section.key=value"));
        assert!(refusal(&["data_dir.x=1"]).contains("data_dir is a value, not a section"));
    }
}
