//! Request bodies checked against the ACI API description's definitions (JSON Schema as
//! Swagger 2.0 uses it): `$ref`, `allOf`, `type`, `required`, `properties`,
//! `additionalProperties`, `items` and `enum`. References outside the file (ARM's common
//! types) are taken as satisfied. Enums and unknown properties are checked strictly, because a
//! client should send the documented values and fields even though ARM models enums as
//! extensible strings and drops fields it does not know.
//!
//! The definitions come from `definitions.json` beside this file: exactly those keywords of
//! `containerInstance.2026-05-01.json` (Azure/azure-rest-api-specs, `specification/
//! containerinstance/resource-manager/Microsoft.ContainerInstance/ContainerInstance/stable/
//! 2026-05-01/containerInstance.json`), so that the tests run from any checkout. The
//! `schema::tests` test compares it with the full description when one is at hand
//! (`VK_ACI_SPEC`, or `shared/reference/aci/` beside the checkout) and rewrites it when
//! `VK_ACI_WRITE_DEFINITIONS=1`.

#[cfg(test)]
mod tests;

use serde_json::Value;

/// The API description's definitions.
#[derive(Debug)]
pub struct Spec {
    document: Value,
}

impl Spec {
    /// The definitions this crate carries.
    pub fn bundled() -> Self {
        let document = serde_json::from_str(include_str!("definitions.json"))
            .expect("definitions.json is JSON");
        Spec { document }
    }

    /// What is wrong with `value` as an instance of `definitions/NAME`; empty if nothing.
    pub fn validate(&self, definition: &str, value: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        let schema = &self.document["definitions"][definition];
        self.check(schema, value, "$", &mut problems);
        problems
    }

    fn resolve<'s>(&'s self, schema: &'s Value) -> Option<&'s Value> {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.strip_prefix("#/definitions/")?;
                self.document["definitions"].get(name)
            }
            None => Some(schema),
        }
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let Some(schema) = self.resolve(schema) else {
            return;
        };
        for part in schema["allOf"].as_array().into_iter().flatten() {
            self.check(part, value, at, problems);
        }
        if let Some(kind) = schema["type"].as_str() {
            let fits = match kind {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                _ => true,
            };
            if !fits {
                problems.push(format!("{at}: expected {kind}, got {value}"));
                return;
            }
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            problems.push(format!(
                "{at}: {value} is not one of {}",
                Value::from(allowed.clone())
            ));
        }
        if let Value::Object(fields) = value {
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                if !fields.contains_key(name) {
                    problems.push(format!("{at}: required property {name} is missing"));
                }
            }
            let properties = &schema["properties"];
            for (name, field) in fields {
                let path = format!("{at}.{name}");
                match properties.get(name) {
                    Some(property) => self.check(property, field, &path, problems),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            problems.push(format!("{path}: unknown property"));
                        }
                        Some(extra @ Value::Object(_)) => self.check(extra, field, &path, problems),
                        // A misspelt field would be dropped silently by ARM: flag it, unless
                        // the rest of the object's fields come from elsewhere (`allOf`).
                        _ if properties.is_object() && schema.get("allOf").is_none() => {
                            problems.push(format!("{path}: unknown property"));
                        }
                        _ => {}
                    },
                }
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
            for (index, item) in items.iter().enumerate() {
                self.check(item_schema, item, &format!("{at}[{index}]"), problems);
            }
        }
    }
}
