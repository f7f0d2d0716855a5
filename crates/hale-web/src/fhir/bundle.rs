//! The Bundles Hale answers with: searchset, history, and batch/transaction responses.
//! Typed, so the wire shape is checked by the compiler rather than assembled by hand.

use hale_app::StoredResource;
use hale_fhir::date::format_instant;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// A Bundle resource.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    resource_type: &'static str,
    id: String,
    meta: BundleMeta,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    link: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entry: Vec<Entry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BundleMeta {
    last_updated: String,
}

/// A Bundle link.
#[derive(Debug, Serialize)]
pub struct Link {
    relation: &'static str,
    url: String,
}

impl Link {
    /// A link with a relation (`self`, `next`, `previous`).
    pub fn new(relation: &'static str, url: String) -> Self {
        Self { relation, url }
    }
}

/// A Bundle entry.
#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(skip_serializing_if = "Option::is_none")]
    full_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    search: Option<SearchMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Request>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Response>,
}

#[derive(Debug, Serialize)]
struct SearchMode {
    mode: &'static str,
}

#[derive(Debug, Serialize)]
struct Request {
    method: &'static str,
    url: String,
}

/// An entry's `response` element.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Value>,
}

fn full_url(base: &str, r: &StoredResource) -> String {
    format!("{base}/{}/{}", r.resource_type, r.id)
}

impl Bundle {
    fn new(kind: &'static str, total: Option<i64>, link: Vec<Link>, entry: Vec<Entry>) -> Self {
        Self {
            resource_type: "Bundle",
            id: uuid::Uuid::new_v4().to_string(),
            meta: BundleMeta {
                last_updated: format_instant(hale_fhir::date::now_millis()),
            },
            kind,
            total,
            link,
            entry,
        }
    }

    /// A search result page.
    pub fn searchset(
        base: &str,
        total: Option<i64>,
        link: Vec<Link>,
        matches: Vec<Box<RawValue>>,
        found: &[StoredResource],
        included: Vec<StoredResource>,
    ) -> Self {
        let mut entry: Vec<Entry> = found
            .iter()
            .zip(matches)
            .map(|(r, resource)| Entry {
                full_url: Some(full_url(base, r)),
                resource: Some(resource),
                search: Some(SearchMode { mode: "match" }),
                ..Entry::default()
            })
            .collect();
        entry.extend(included.into_iter().map(|r| Entry {
            full_url: Some(full_url(base, &r)),
            resource: r.resource,
            search: Some(SearchMode { mode: "include" }),
            ..Entry::default()
        }));
        Self::new("searchset", total, link, entry)
    }

    /// A history: every version, newest first; deletions without content.
    pub fn history(base: &str, versions: Vec<StoredResource>, self_link: String) -> Self {
        let total = i64::try_from(versions.len()).ok();
        let entry = versions
            .into_iter()
            .map(|r| {
                let (method, status) = match r.method {
                    hale_app::Method::Create => ("POST", "201 Created"),
                    hale_app::Method::Update => ("PUT", "200 OK"),
                    hale_app::Method::Delete => ("DELETE", "204 No Content"),
                };
                Entry {
                    full_url: Some(full_url(base, &r)),
                    request: Some(Request {
                        method,
                        url: if method == "POST" {
                            r.resource_type.clone()
                        } else {
                            format!("{}/{}", r.resource_type, r.id)
                        },
                    }),
                    response: Some(Response {
                        status: status.into(),
                        location: None,
                        etag: Some(format!("W/\"{}\"", r.version)),
                        last_modified: Some(format_instant(r.last_updated)),
                        outcome: None,
                    }),
                    resource: r.resource,
                    search: None,
                }
            })
            .collect();
        Self::new("history", total, vec![Link::new("self", self_link)], entry)
    }

    /// `$everything`: every resource of the record, as a searchset.
    pub fn everything(base: &str, all: Vec<StoredResource>) -> Self {
        let total = i64::try_from(all.len()).ok();
        let entry = all
            .into_iter()
            .map(|r| Entry {
                full_url: Some(full_url(base, &r)),
                resource: r.resource,
                search: Some(SearchMode { mode: "match" }),
                ..Entry::default()
            })
            .collect();
        Self::new("searchset", total, Vec::new(), entry)
    }

    /// About how many bytes the Bundle takes as JSON: its resources, and a little for each
    /// entry's other elements.
    pub fn size_hint(&self) -> usize {
        self.entry
            .iter()
            .map(|e| {
                e.resource.as_ref().map_or(0, |r| r.get().len())
                    + e.full_url.as_ref().map_or(0, String::len)
                    + 160
            })
            .sum::<usize>()
            + 512
    }

    /// A batch or transaction response.
    pub fn response(kind: &'static str, entry: Vec<Entry>) -> Self {
        Self::new(kind, None, Vec::new(), entry)
    }
}

impl Entry {
    /// A response entry for a resource written or read.
    pub fn written(
        base: &str,
        status: &str,
        r: Option<StoredResource>,
        matches: Vec<StoredResource>,
    ) -> Self {
        let Some(r) = r else {
            if matches.is_empty() {
                return Entry {
                    response: Some(Response {
                        status: status.into(),
                        location: None,
                        etag: None,
                        last_modified: None,
                        outcome: None,
                    }),
                    ..Entry::default()
                };
            }
            let found = matches.clone();
            let values: Vec<Box<RawValue>> =
                matches.into_iter().filter_map(|m| m.resource).collect();
            let bundle = Bundle::searchset(
                base,
                i64::try_from(found.len()).ok(),
                Vec::new(),
                values,
                &found,
                Vec::new(),
            );
            return Entry {
                resource: serde_json::value::to_raw_value(&bundle).ok(),
                response: Some(Response {
                    status: status.into(),
                    location: None,
                    etag: None,
                    last_modified: None,
                    outcome: None,
                }),
                ..Entry::default()
            };
        };
        Entry {
            full_url: Some(full_url(base, &r)),
            response: Some(Response {
                status: status.into(),
                location: Some(format!(
                    "{}/{}/_history/{}",
                    r.resource_type, r.id, r.version
                )),
                etag: Some(format!("W/\"{}\"", r.version)),
                last_modified: Some(format_instant(r.last_updated)),
                outcome: None,
            }),
            resource: r.resource,
            ..Entry::default()
        }
    }

    /// A failed batch entry.
    pub fn failed(status: String, outcome: Value) -> Self {
        Entry {
            response: Some(Response {
                status,
                location: None,
                etag: None,
                last_modified: None,
                outcome: Some(outcome),
            }),
            ..Entry::default()
        }
    }
}
