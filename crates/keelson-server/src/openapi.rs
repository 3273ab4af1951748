//! The OpenAPI 3.1 document of the whole HTTP surface, generated from the route table: every
//! route with its method, path parameters, the permission it declares (`x-keelson-permission`),
//! its security requirements and the error shape. Served at `/api/v1/openapi.json`.

use crate::auth::RouteSpec;
use axum::http::Method;
use keelson_core::auth::Permission;
use serde_json::{json, Map, Value};

/// Routes whose bodies are not JSON (uploads, protobuf, CSV, tensors), which the document
/// describes as bytes.
fn takes_raw_body(path: &str, method: &Method) -> bool {
    *method == Method::PUT && path.contains("/artifacts/")
        || path.starts_with("/v1/traces")
        || path.ends_with("/invocations")
        || path.contains("/mpu/upload/")
        || path.starts_with("/v2/")
}

/// `{name}` and `{*path}` parameters of a template, and the template in OpenAPI's spelling.
fn path_parameters(path: &str) -> (String, Vec<Value>) {
    let mut parameters = Vec::new();
    let template: Vec<String> = path
        .split('/')
        .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                let (name, wildcard) = match name.strip_prefix('*') {
                    Some(rest) => (rest, true),
                    None => (name, false),
                };
                let mut parameter = json!({
                    "name": name, "in": "path", "required": true,
                    "schema": {"type": "string", "minLength": 1},
                });
                if wildcard {
                    parameter["description"] = json!("a path of one or more segments");
                    parameter["x-keelson-wildcard"] = json!(true);
                }
                parameters.push(parameter);
                format!("{{{name}}}")
            }
            None => segment.to_string(),
        })
        .collect();
    (template.join("/"), parameters)
}

fn operation_id(method: &Method, path: &str) -> String {
    let words: Vec<String> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{}_{}", method.as_str().to_ascii_lowercase(), words.join("_"))
}

pub fn document(routes: &[RouteSpec]) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for route in routes {
        let (template, parameters) = path_parameters(&route.path);
        let mut operation = json!({
            "operationId": operation_id(&route.method, &route.path),
            "x-keelson-permission": route.permission.to_string(),
            "responses": {
                "2XX": {"description": "success"},
                "4XX": {
                    "description": "refused: bad input, missing, unauthenticated, forbidden, conflict, too many",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        });
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if route.permission == Permission::Public {
            operation["security"] = json!([]);
        }
        if matches!(route.method, Method::POST | Method::PUT | Method::PATCH) {
            operation["requestBody"] = if takes_raw_body(&route.path, &route.method) {
                json!({"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})
            } else {
                json!({"content": {"application/json": {"schema": {"type": "object"}}}})
            };
        }
        let item = paths.entry(template).or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Keelson",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Keelson's HTTP API: MLflow-compatible tracking and registry, Open Inference Protocol, \
                            and Keelson's own resources. Every operation names the permission it needs.",
        },
        "security": [{"bearer": []}, {"basic": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a service token (kst_…)"},
                "basic": {"type": "http", "scheme": "basic", "description": "a user's name and password, or a principal's name and token"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "description": "Keelson's and MLflow's error shape; the Open Inference Protocol routes answer {error}.",
                    "properties": {
                        "error_code": {"type": "string"},
                        "message": {"type": "string"},
                        "error": {"type": "string"},
                    },
                },
            },
        },
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_parameters_in_openapi_spelling() {
        let (template, parameters) = path_parameters("/api/2.0/mlflow-artifacts/artifacts/{*path}");
        assert_eq!(template, "/api/2.0/mlflow-artifacts/artifacts/{path}");
        assert_eq!(parameters[0]["name"], "path");
        assert_eq!(parameters[0]["x-keelson-wildcard"], true);
        assert_eq!(operation_id(&Method::GET, "/api/v1/endpoints/{endpoint}"), "get_api_v1_endpoints_endpoint");
    }
}
