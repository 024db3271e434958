use std::path::PathBuf;

use serde_json::Map;

use super::*;
use crate::paths;

/// Of the whole API description: the checks' keywords. Everything else (descriptions,
/// examples, `x-ms-*` extensions) is left out of `definitions.json`.
const KEYWORDS: [&str; 8] = [
    "$ref",
    "allOf",
    "type",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "enum",
];

/// Of a whole API description, the definitions with only the keywords the checks read.
fn extract(description: &Value) -> Spec {
    let definitions = description["definitions"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let definitions: Map<String, Value> = (definitions.into_iter())
        .map(|(name, schema)| (name, keywords(&schema)))
        .collect();
    Spec {
        document: Value::Object(Map::from_iter([(
            "definitions".to_string(),
            Value::Object(definitions),
        )])),
    }
}

/// `schema` with only [`KEYWORDS`], recursively (property names are kept whatever they are).
fn keywords(schema: &Value) -> Value {
    let Value::Object(fields) = schema else {
        return schema.clone();
    };
    let kept = fields
        .iter()
        .filter(|(key, _)| KEYWORDS.contains(&key.as_str()));
    Value::Object(
        kept.map(|(key, value)| {
            let value = match (key.as_str(), value) {
                ("properties", Value::Object(properties)) => Value::Object(
                    (properties.iter())
                        .map(|(name, property)| (name.clone(), keywords(property)))
                        .collect(),
                ),
                ("allOf", Value::Array(parts)) => parts.iter().map(keywords).collect(),
                ("items" | "additionalProperties", _) => keywords(value),
                _ => value.clone(),
            };
            (key.clone(), value)
        })
        .collect(),
    )
}

const DESCRIPTION: &str = "containerInstance.2026-05-01.json";

/// The full API description, if one is at hand: `VK_ACI_SPEC`, else `shared/reference/aci/`
/// beside the checkout.
fn description() -> Option<PathBuf> {
    let path = match std::env::var_os("VK_ACI_SPEC") {
        Some(path) => PathBuf::from(path),
        None => paths::workspace()
            .parent()?
            .join("shared/reference/aci")
            .join(DESCRIPTION),
    };
    path.is_file().then_some(path)
}

#[test]
fn the_bundled_definitions_are_the_api_descriptions() {
    let Some(path) = description() else {
        eprintln!("no {DESCRIPTION} at hand (set VK_ACI_SPEC): nothing to compare with");
        return;
    };
    let text = std::fs::read_to_string(&path).expect("the API description is readable");
    let extracted = extract(&serde_json::from_str(&text).expect("it is JSON")).document;
    let bundled = paths::workspace().join("tests/src/aci/definitions.json");
    if std::env::var_os("VK_ACI_WRITE_DEFINITIONS").is_some() {
        let json = serde_json::to_string_pretty(&extracted).expect("JSON");
        std::fs::write(&bundled, json + "\n").expect("definitions.json is writable");
    }
    assert_eq!(
        Spec::bundled().document,
        extracted,
        "{} differs from {}: rerun with VK_ACI_WRITE_DEFINITIONS=1",
        bundled.display(),
        path.display()
    );
}

#[test]
fn only_the_checked_keywords_are_kept() {
    let description = serde_json::json!({"definitions": {"Thing": {
        "description": "prose", "type": "object", "required": ["a"],
        "properties": {"a": {"type": "string", "enum": ["x"], "description": "more prose",
                              "x-ms-enum": {"name": "A"}},
                       "b": {"$ref": "#/definitions/Other", "readOnly": true}},
    }}});
    assert_eq!(
        extract(&description).document,
        serde_json::json!({"definitions": {"Thing": {
            "type": "object", "required": ["a"],
            "properties": {"a": {"type": "string", "enum": ["x"]},
                           "b": {"$ref": "#/definitions/Other"}},
        }}})
    );
}
