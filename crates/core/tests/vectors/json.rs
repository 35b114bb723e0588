//! Access to the JSON files of `spec/vectors/`: loading (with the checks every file must pass)
//! and typed lookups that panic with the missing key's name.

use serde_json::Value;

pub(crate) fn load(name: &str) -> Value {
    let path = format!("{}/../../spec/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(value["version"], 1, "{name}: version");
    assert!(
        !text_of(&value, "description").is_empty(),
        "{name}: description"
    );
    assert!(text.ends_with("}\n"), "{name}: trailing newline");
    value
}

pub(crate) fn text_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string {key} in {v}"))
}

pub(crate) fn bytes(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(text_of(v, key)).unwrap_or_else(|e| panic!("{key}: {e}"))
}

pub(crate) fn b32(v: &Value, key: &str) -> [u8; 32] {
    bytes(v, key)
        .try_into()
        .unwrap_or_else(|_| panic!("{key}: not 32 bytes"))
}

pub(crate) fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("missing number {key} in {v}"))
}

pub(crate) fn num32(v: &Value, key: &str) -> u32 {
    u32::try_from(num(v, key)).unwrap()
}

pub(crate) fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("missing list {key}"))
}

pub(crate) fn find<'a>(items: &'a [Value], name: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no entry named {name}"))
}
