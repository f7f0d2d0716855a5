//! The CapabilityStatement, generated from what Hale really implements: every record
//! resource type, its indexed search parameters, and the operations routed in `mod.rs`.

use hale_fhir::{Definitions, SearchParamType};
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityStatement {
    resource_type: &'static str,
    status: &'static str,
    date: String,
    publisher: &'static str,
    kind: &'static str,
    software: Software,
    fhir_version: &'static str,
    format: [&'static str; 2],
    patch_format: [&'static str; 1],
    rest: [Rest; 1],
}

#[derive(Debug, Serialize)]
struct Software {
    name: &'static str,
    version: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Rest {
    mode: &'static str,
    security: Security,
    resource: Vec<Resource>,
    interaction: [Interaction; 2],
}

#[derive(Debug, Serialize)]
struct Security {
    description: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Resource {
    #[serde(rename = "type")]
    kind: String,
    interaction: Vec<Interaction>,
    versioning: &'static str,
    read_history: bool,
    update_create: bool,
    conditional_create: bool,
    conditional_update: bool,
    conditional_delete: &'static str,
    search_include: Vec<String>,
    search_rev_include: Vec<String>,
    search_param: Vec<SearchParam>,
    operation: Vec<Operation>,
}

#[derive(Debug, Serialize)]
struct Interaction {
    code: &'static str,
}

#[derive(Debug, Serialize)]
struct SearchParam {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct Operation {
    name: &'static str,
    definition: &'static str,
}

fn type_name(t: SearchParamType) -> &'static str {
    match t {
        SearchParamType::Token => "token",
        SearchParamType::String => "string",
        SearchParamType::Date => "date",
        SearchParamType::Reference => "reference",
        SearchParamType::Quantity => "quantity",
        SearchParamType::Uri => "uri",
        SearchParamType::Number => "number",
    }
}

impl CapabilityStatement {
    /// The statement for these definitions.
    pub fn generate(defs: &Definitions) -> Self {
        let resource = defs
            .resource_types()
            .iter()
            .filter(|t| !defs.is_definitional(t))
            .map(|t| {
                let mut search_param: Vec<SearchParam> = vec![
                    SearchParam {
                        name: "_id".into(),
                        kind: "token",
                    },
                    SearchParam {
                        name: "_lastUpdated".into(),
                        kind: "date",
                    },
                ];
                search_param.extend(defs.search_params(t).map(|p| SearchParam {
                    name: p.name.clone(),
                    kind: type_name(p.kind),
                }));
                let refs: Vec<String> = defs
                    .search_params(t)
                    .filter(|p| p.kind == SearchParamType::Reference)
                    .map(|p| format!("{t}:{}", p.name))
                    .collect();
                let mut operation = vec![Operation {
                    name: "validate",
                    definition: "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                }];
                if t == "Observation" {
                    // A Bundle of Observations into the time-series store (daily summaries
                    // then answer reads and searches as `Observation/daily-…`).
                    operation.push(Operation {
                        name: "add-samples",
                        definition: "urn:hale:operation:Observation-add-samples",
                    });
                }
                if t == "Patient" {
                    operation.push(Operation {
                        name: "everything",
                        definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                    });
                }
                Resource {
                    kind: t.clone(),
                    interaction: [
                        "read",
                        "vread",
                        "update",
                        "patch",
                        "delete",
                        "history-instance",
                        "history-type",
                        "create",
                        "search-type",
                    ]
                    .into_iter()
                    .map(|code| Interaction { code })
                    .collect(),
                    versioning: "versioned-update",
                    read_history: true,
                    update_create: true,
                    conditional_create: true,
                    conditional_update: true,
                    conditional_delete: "not-supported",
                    search_include: refs.clone(),
                    search_rev_include: refs,
                    search_param,
                    operation,
                }
            })
            .collect();
        Self {
            resource_type: "CapabilityStatement",
            status: "active",
            date: hale_fhir::date::format_instant(hale_fhir::date::now_millis()),
            publisher: "Hale",
            kind: "instance",
            software: Software {
                name: "Hale",
                version: env!("CARGO_PKG_VERSION"),
            },
            fhir_version: "4.0.1",
            format: ["application/fhir+json", "json"],
            patch_format: ["application/json-patch+json"],
            rest: [Rest {
                mode: "server",
                security: Security {
                    description: "Every request needs a bearer token bound to one record (patient/ scopes) or a system token (system/ scopes).",
                },
                resource,
                interaction: [
                    Interaction {
                        code: "transaction",
                    },
                    Interaction { code: "batch" },
                ],
            }],
        }
    }
}
