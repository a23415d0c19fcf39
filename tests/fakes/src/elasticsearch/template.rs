//! The mustache subset Elasticsearch's search templates (and role-descriptor query templates,
//! which Elastic's document-level security stores in `.search-acl-filter-*`) are written in.
//!
//! Supported: `{{name}}` (dotted paths into `params`; strings are inserted JSON-escaped,
//! as Elasticsearch's JSON-content mustache does), `{{{name}}}` (verbatim),
//! `{{#toJson}}name{{/toJson}}` (the value as JSON), `{{#join}}name{{/join}}` (an array joined
//! with `,`) and `{{! comments}}`. A missing name renders as nothing, as mustache does. Other
//! sections (`{{#x}}…{{/x}}`, `{{^x}}`) are refused with an error rather than rendered wrongly.

use serde_json::Value;

use super::query::lookup;

/// Renders `source` with `params`, or says why it cannot.
pub fn render(source: &str, params: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        if let Some(inner) = tag.strip_prefix("{{{") {
            let end = inner.find("}}}").ok_or("unclosed `{{{` in the template")?;
            out.push_str(&text(get(params, inner[..end].trim())));
            rest = &inner[end + 3..];
            continue;
        }
        let inner = &tag[2..];
        let end = inner.find("}}").ok_or("unclosed `{{` in the template")?;
        let name = inner[..end].trim();
        rest = &inner[end + 2..];
        if name.starts_with('!') {
            continue;
        }
        if let Some(section) = name.strip_prefix('#') {
            let section = section.trim();
            let close = format!("{{{{/{section}}}}}");
            let body_end = rest
                .find(&close)
                .ok_or_else(|| format!("unclosed section `{{{{#{section}}}}}`"))?;
            let body = rest[..body_end].trim();
            rest = &rest[body_end + close.len()..];
            let value = get(params, body);
            match section {
                "toJson" => out.push_str(&value.map_or("null".into(), Value::to_string)),
                "join" => out.push_str(&match value {
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|v| text(Some(v)))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => text(other),
                }),
                other => return Err(format!("the fake does not render section `{other}`")),
            }
            continue;
        }
        if name.starts_with(['^', '/', '>', '&', '=']) {
            return Err(format!("the fake does not render `{{{{{name}}}}}`"));
        }
        out.push_str(&json_escape(&text(get(params, name))));
    }
    out.push_str(rest);
    Ok(out)
}

fn get<'a>(params: &'a Value, name: &str) -> Option<&'a Value> {
    if name == "." {
        return Some(params);
    }
    lookup(params, name)
}

fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn json_escape(s: &str) -> String {
    let quoted = Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_variables_to_json_join_and_refuses_other_sections() {
        let params = json!({"q": "a \"b\"", "ids": ["x", "y"], "n": {"m": 3}});
        assert_eq!(
            render(
                r#"{"a": "{{q}}", "b": {{#toJson}}ids{{/toJson}}, "c": "{{#join}}ids{{/join}}", "d": {{n.m}}{{! note }}, "e": "{{missing}}"}"#,
                &params
            )
            .unwrap(),
            r#"{"a": "a \"b\"", "b": ["x","y"], "c": "x,y", "d": 3, "e": ""}"#
        );
        assert_eq!(render("{{{q}}}", &params).unwrap(), "a \"b\"");
        assert!(render("{{#ids}}x{{/ids}}", &params).is_err());
        assert!(render("{{q", &params).is_err());
    }
}
