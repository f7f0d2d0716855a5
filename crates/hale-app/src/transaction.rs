//! Batch and transaction bundles (FHIR R4 §3.1.0.11).
//!
//! A transaction is checked whole before anything is written: every entry validated and
//! placed, `urn:uuid:` full URLs mapped to the ids Hale assigns and rewritten in every
//! reference, and then all of it goes to the store as one batch, one durable commit. One
//! bad entry and nothing is stored. A batch runs each entry on its own.

use std::collections::{HashMap, HashSet};

use hale_core::{Interaction, RecordId, RequestContext, ResourceId};
use hale_fhir::index::local_reference;
use hale_fhir::{Issue, IssueCode};
use hale_store::{AuditEntry, Expect, StoredResource, WriteBatch, WriteOp};
use serde_json::Value;

use crate::placement::{Placement, references, rewrite_references};
use crate::resources::parse_query;
use crate::{App, AppError, MAX_BUNDLE_ENTRIES};

/// Which kind of bundle was processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    /// All or nothing.
    Transaction,
    /// Each entry on its own.
    Batch,
}

/// What an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    /// A resource was created.
    Created,
    /// Read, updated, or matched by a conditional create.
    Ok,
    /// Deleted.
    Deleted,
}

/// The outcome of one successful entry, for the response bundle.
#[derive(Debug, Clone)]
pub struct EntryResult {
    /// What happened.
    pub status: EntryStatus,
    /// The resource written or read.
    pub resource: Option<StoredResource>,
    /// For a search entry in a batch: the matches.
    pub matches: Vec<StoredResource>,
}

struct Entry {
    method: String,
    url: String,
    full_url: Option<String>,
    resource: Option<Value>,
    if_none_exist: Option<String>,
    if_match: Option<i64>,
}

fn at(i: usize, issues: Vec<Issue>) -> Vec<Issue> {
    issues
        .into_iter()
        .map(|mut x| {
            x.path = if x.path.is_empty() {
                format!("Bundle.entry[{i}]")
            } else {
                format!(
                    "Bundle.entry[{i}].resource.{}",
                    x.path
                        .split_once('.')
                        .map_or(x.path.as_str(), |(_, rest)| rest)
                )
            };
            x
        })
        .collect()
}

/// Prefixes an error's issues with the entry they concern.
fn in_entry(i: usize, e: AppError) -> AppError {
    match e {
        AppError::BadRequest(v) => AppError::BadRequest(at(i, v)),
        AppError::Invalid(v) => AppError::Invalid(at(i, v)),
        AppError::Unprocessable(v) => AppError::Unprocessable(at(i, v)),
        other => other,
    }
}

/// The bundle is taken, not borrowed: each entry's resource moves out of it, uncopied.
fn parse_entries(mut bundle: Value) -> Result<(BundleKind, Vec<Entry>), AppError> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(AppError::bad_request(
            "resourceType",
            "POST /fhir takes a Bundle",
        ));
    }
    let kind = match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => BundleKind::Transaction,
        Some("batch") => BundleKind::Batch,
        _ => {
            return Err(AppError::bad_request(
                "Bundle.type",
                "Bundle.type must be transaction or batch",
            ));
        }
    };
    let mut entries = match bundle.get_mut("entry").map(Value::take) {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    };
    if entries.len() > MAX_BUNDLE_ENTRIES {
        return Err(AppError::bad_request(
            "Bundle.entry",
            format!("a bundle may hold at most {MAX_BUNDLE_ENTRIES} entries"),
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter_mut().enumerate() {
        let resource = e.get_mut("resource").map(Value::take);
        let request = e.get("request").ok_or_else(|| {
            AppError::bad_request(
                &format!("Bundle.entry[{i}].request"),
                "every entry needs a request",
            )
        })?;
        let text = |k: &str| request.get(k).and_then(Value::as_str).map(str::to_owned);
        let if_match = match text("ifMatch") {
            Some(m) => Some(parse_etag(&m).ok_or_else(|| {
                AppError::bad_request(
                    &format!("Bundle.entry[{i}].request.ifMatch"),
                    "expected W/\"<version>\"",
                )
            })?),
            None => None,
        };
        out.push(Entry {
            method: text("method").unwrap_or_default(),
            url: text("url").unwrap_or_default(),
            full_url: e.get("fullUrl").and_then(Value::as_str).map(str::to_owned),
            resource,
            if_none_exist: text("ifNoneExist"),
            if_match,
        });
    }
    Ok((kind, out))
}

/// A version from an ETag: `W/"3"` or `"3"` or `3`.
pub fn parse_etag(s: &str) -> Option<i64> {
    s.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

fn entry(status: EntryStatus, resource: Option<StoredResource>) -> EntryResult {
    EntryResult {
        status,
        resource,
        matches: Vec::new(),
    }
}

fn written(w: crate::Written) -> EntryResult {
    entry(
        if w.created {
            EntryStatus::Created
        } else {
            EntryStatus::Ok
        },
        Some(w.resource),
    )
}

impl App {
    /// `POST /fhir` with a batch or transaction bundle.
    /// A transaction's entries all succeed (or the whole call fails); a batch's each succeed
    /// or fail on their own.
    pub fn bundle(
        &self,
        ctx: &RequestContext,
        bundle: Value,
    ) -> Result<(BundleKind, Vec<Result<EntryResult, AppError>>), AppError> {
        let (kind, entries) = parse_entries(bundle)?;
        // Access that has ended refuses the whole bundle, not each entry.
        self.access(ctx)?;
        match kind {
            BundleKind::Transaction => Ok((
                kind,
                self.transaction(ctx, entries)?
                    .into_iter()
                    .map(Ok)
                    .collect(),
            )),
            BundleKind::Batch => Ok((
                kind,
                entries
                    .into_iter()
                    .map(|e| self.batch_entry(ctx, e))
                    .collect(),
            )),
        }
    }

    fn batch_entry(&self, ctx: &RequestContext, e: Entry) -> Result<EntryResult, AppError> {
        let (path, query) = e.url.split_once('?').unwrap_or((e.url.as_str(), ""));
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (e.method.as_str(), parts.as_slice(), e.resource) {
            ("POST", [rtype], Some(body)) => self
                .create(ctx, rtype, body, e.if_none_exist.as_deref())
                .map(written),
            ("PUT", [rtype, id], Some(body)) => {
                self.update(ctx, rtype, id, body, e.if_match).map(written)
            }
            ("DELETE", [rtype, id], _) => self
                .delete(ctx, rtype, id, e.if_match)
                .map(|()| entry(EntryStatus::Deleted, None)),
            ("GET", [rtype, id], _) => self
                .read(ctx, rtype, id)
                .map(|r| entry(EntryStatus::Ok, Some(r))),
            ("GET", [rtype], _) => {
                self.search(ctx, rtype, &parse_query(query), false)
                    .map(|(_, page)| EntryResult {
                        status: EntryStatus::Ok,
                        resource: None,
                        matches: page.matches,
                    })
            }
            _ => Err(AppError::bad_request(
                "request",
                "unsupported method or url in a batch entry",
            )),
        }
    }

    fn transaction(
        &self,
        ctx: &RequestContext,
        mut entries: Vec<Entry>,
    ) -> Result<Vec<EntryResult>, AppError> {
        // 1. Assign ids and map full URLs to them.
        let mut ids: Vec<(String, String)> = Vec::with_capacity(entries.len());
        let mut map: HashMap<String, String> = HashMap::new();
        for (i, e) in entries.iter_mut().enumerate() {
            let path = e
                .url
                .split('?')
                .next()
                .unwrap_or_default()
                .trim_matches('/');
            let parts: Vec<&str> = path.split('/').collect();
            let (rtype, id) = match (e.method.as_str(), parts.as_slice()) {
                ("POST", [rtype]) => (rtype.to_string(), ResourceId::generate().to_string()),
                ("PUT", [rtype, id]) | ("DELETE", [rtype, id]) => {
                    let id = ResourceId::parse(id)
                        .map_err(|err| in_entry(i, AppError::bad_request("", err.to_string())))?;
                    (rtype.to_string(), id.to_string())
                }
                _ => {
                    return Err(in_entry(
                        i,
                        AppError::NotSupported(format!(
                            "entry {i}: a transaction entry must be POST [type], PUT [type]/[id] or DELETE [type]/[id]"
                        )),
                    ));
                }
            };
            if !self.defs.is_resource_type(&rtype) {
                return Err(in_entry(
                    i,
                    AppError::NotSupported(format!("'{rtype}' is not an R4 resource type")),
                ));
            }
            if e.method != "DELETE"
                && e.resource
                    .as_ref()
                    .and_then(|r| r.get("resourceType"))
                    .and_then(Value::as_str)
                    != Some(rtype.as_str())
            {
                return Err(in_entry(
                    i,
                    AppError::bad_request(
                        "",
                        "the entry's resourceType must match its request url",
                    ),
                ));
            }
            if let Some(full) = &e.full_url {
                map.insert(full.clone(), format!("{rtype}/{id}"));
            }
            ids.push((rtype, id));
        }
        // 2. Conditional creates that match point their full URL at the existing resource.
        let mut existing: Vec<Option<StoredResource>> = vec![None; entries.len()];
        for (i, e) in entries.iter_mut().enumerate() {
            if let (Some(cond), "POST") = (&e.if_none_exist, e.method.as_str()) {
                let (rtype, _) = &ids[i];
                if matches!(ctx.actor, hale_core::Actor::Organisation { .. }) {
                    return Err(in_entry(
                        i,
                        AppError::bad_request(
                            "",
                            "conditional creates in a bundle are not available to an organisation's system",
                        ),
                    ));
                }
                let mut pairs = parse_query(cond.split_once('?').map_or(cond.as_str(), |(_, q)| q));
                pairs.push(("_count".into(), "2".into()));
                let q = hale_fhir::search::parse(self.defs, rtype, &pairs, true)
                    .map_err(|x| in_entry(i, AppError::BadRequest(vec![x])))?;
                crate::resources::refuse_unindexed_across(self.scope(ctx), &q)
                    .map_err(|x| in_entry(i, x))?;
                let found = self.store.search(self.scope(ctx), &q)?.matches;
                match found.as_slice() {
                    [] => {}
                    [one] => {
                        if let Some(full) = &e.full_url {
                            map.insert(full.clone(), format!("{}/{}", one.resource_type, one.id));
                        }
                        existing[i] = Some(one.clone());
                    }
                    _ => {
                        return Err(AppError::PreconditionFailed(format!(
                            "entry {i}: ifNoneExist matched more than one resource"
                        )));
                    }
                }
            }
        }
        // 3. Rewrite references; an unresolved urn: reference is an error.
        for (i, e) in entries.iter_mut().enumerate() {
            if let Some(r) = e.resource.as_mut() {
                rewrite_references(r, &map);
                let mut refs = Vec::new();
                references(r, &mut refs);
                if refs
                    .iter()
                    .any(|x| x.starts_with("urn:uuid:") || x.starts_with("urn:oid:"))
                {
                    return Err(in_entry(
                        i,
                        AppError::unprocessable(
                            "",
                            "a urn: reference names no entry of this bundle",
                        ),
                    ));
                }
            }
        }
        // 4. One record for the whole transaction.
        let placement = self.transaction_record(ctx, &entries, &ids)?;
        let in_bundle: HashSet<String> = ids.iter().map(|(t, i)| format!("{t}/{i}")).collect();
        // 5. Prepare every write (DELETE, then POST, then PUT: §3.1.0.11.2), then commit once.
        let order = |m: &str| match m {
            "DELETE" => 0,
            "POST" => 1,
            _ => 2,
        };
        let mut sequence: Vec<usize> = (0..entries.len())
            .filter(|i| existing[*i].is_none())
            .collect();
        sequence.sort_by_key(|i| order(&entries[*i].method));
        let mut ops = Vec::with_capacity(entries.len() + 1);
        if placement.new_record {
            ops.push(WriteOp::CreateRecord {
                record: placement.record.clone(),
            });
        }
        let first_op = ops.len();
        // Each body moves into its write from here (a bundle is up to a thousand resources).
        let mut bodies: Vec<Option<Value>> =
            entries.iter_mut().map(|e| e.resource.take()).collect();
        for &i in &sequence {
            let e = &entries[i];
            let (rtype, id) = &ids[i];
            let interaction = match e.method.as_str() {
                "POST" => Interaction::Create,
                "PUT" => Interaction::Update,
                _ => Interaction::Delete,
            };
            self.require(ctx, rtype, interaction)
                .map_err(|x| in_entry(i, x))?;
            if e.method == "DELETE" {
                let expect = e.if_match.map_or(Expect::Any, Expect::Version);
                let hidden = match self.store.read(self.scope(ctx), rtype, id)? {
                    Some(current) => match current.value() {
                        Some(v) => {
                            let target = crate::access::Target::of(&current.record, rtype, id, &v);
                            let access = self.access(ctx).map_err(|x| in_entry(i, x))?;
                            match access.decide(crate::access::Verb::Delete, &target) {
                                Ok(()) => false,
                                Err(crate::access::Denial::Hidden) => true,
                                Err(crate::access::Denial::Refused(why)) => {
                                    return Err(in_entry(i, AppError::Forbidden(why.into())));
                                }
                            }
                        }
                        None => false,
                    },
                    None => self.exists_elsewhere(ctx, rtype, id)?,
                };
                if hidden {
                    // Answered as a delete of an id that does not exist: nothing to delete,
                    // or the version asked for is not there.
                    if let Expect::Version(v) = expect {
                        return Err(in_entry(
                            i,
                            AppError::PreconditionFailed(format!(
                                "{rtype}/{id} is at version absent, not {v}"
                            )),
                        ));
                    }
                    // Its place in the batch holds a note of the attempt, so that results
                    // keep their places.
                    let mut attempt =
                        self.audit_entry(ctx, &placement.record, "delete", format!("{rtype}/{id}"));
                    attempt.outcome = "not-found".into();
                    ops.push(WriteOp::Audit(attempt));
                    continue;
                }
                ops.push(WriteOp::Delete {
                    record: placement.record.clone(),
                    resource_type: rtype.clone(),
                    id: id.clone(),
                    expect,
                });
                continue;
            }
            let body = bodies[i].take().unwrap_or(Value::Null);
            let expect = match (e.method.as_str(), e.if_match) {
                ("POST", _) => Expect::Absent,
                (_, Some(v)) => Expect::Version(v),
                _ => Expect::Any,
            };
            let prepared = self
                .prepare(ctx, rtype, id, body, expect, Some(&placement), &in_bundle)
                .map_err(|x| in_entry(i, x))?;
            if prepared.placement.record != placement.record {
                return Err(in_entry(
                    i,
                    AppError::unprocessable(
                        "",
                        "every entry of a transaction must belong to the same record",
                    ),
                ));
            }
            ops.push(prepared.op);
        }
        // Each change's audit entry, after every change so results keep their places, and
        // appended together: the log's head is read and signed once for the bundle.
        let audit: Vec<AuditEntry> = ops
            .iter()
            .filter_map(|op| match op {
                WriteOp::Put {
                    record,
                    resource_type,
                    id,
                    ..
                } => Some(self.audit_entry(ctx, record, "write", format!("{resource_type}/{id}"))),
                WriteOp::Delete {
                    record,
                    resource_type,
                    id,
                    ..
                } => Some(self.audit_entry(ctx, record, "delete", format!("{resource_type}/{id}"))),
                _ => None,
            })
            .collect();
        if !audit.is_empty() {
            ops.push(WriteOp::AuditAll(audit));
        }
        let out = self.store.write(WriteBatch { ops })?;
        let mut results: Vec<Option<EntryResult>> = existing
            .into_iter()
            .map(|e| e.map(|r| entry(EntryStatus::Ok, Some(r))))
            .collect();
        for (k, &i) in sequence.iter().enumerate() {
            let stored = out.results.get(first_op + k).cloned().flatten();
            results[i] = Some(match (entries[i].method.as_str(), stored) {
                ("DELETE", _) => entry(EntryStatus::Deleted, None),
                (_, Some(r)) if r.method == hale_store::Method::Create => {
                    entry(EntryStatus::Created, Some(r))
                }
                (_, Some(r)) => entry(EntryStatus::Ok, Some(r)),
                (_, None) => {
                    return Err(AppError::Internal(
                        "the store returned no result for a write".into(),
                    ));
                }
            });
        }
        results
            .into_iter()
            .map(|r| {
                r.ok_or_else(|| AppError::Internal("a transaction entry has no result".into()))
            })
            .collect()
    }

    /// The record a transaction writes into: the actor's; or, for a system actor, a new
    /// record for the bundle's Patient, or the existing record its entries refer to.
    fn transaction_record(
        &self,
        ctx: &RequestContext,
        entries: &[Entry],
        ids: &[(String, String)],
    ) -> Result<Placement, AppError> {
        if let Some(record) = ctx.actor.record() {
            return Ok(Placement {
                record: record.clone(),
                new_record: false,
            });
        }
        for (e, (rtype, id)) in entries.iter().zip(ids) {
            if rtype == "Patient" && e.method != "DELETE" {
                return Ok(match self.store.read(None, "Patient", id)? {
                    Some(p) => Placement {
                        record: p.record,
                        new_record: false,
                    },
                    None => Placement {
                        record: RecordId::parse(id)?,
                        new_record: true,
                    },
                });
            }
        }
        let in_bundle: HashSet<String> = ids.iter().map(|(t, i)| format!("{t}/{i}")).collect();
        let mut records = HashSet::new();
        for e in entries {
            let mut refs = Vec::new();
            if let Some(r) = &e.resource {
                references(r, &mut refs);
            }
            for r in refs {
                if in_bundle.contains(&r) {
                    continue;
                }
                if let Some(("Patient", pid)) = local_reference(&r)
                    && let Some(p) = self.store.read(None, "Patient", pid)?
                {
                    records.insert(p.record);
                }
            }
        }
        let mut it = records.into_iter();
        match (it.next(), it.next()) {
            (Some(record), None) => Ok(Placement {
                record,
                new_record: false,
            }),
            (None, _) => Err(AppError::Unprocessable(vec![Issue::error(
                IssueCode::BusinessRule,
                "Bundle",
                "cannot tell which person's record this transaction belongs to: include their Patient or reference it",
            )])),
            _ => Err(AppError::unprocessable(
                "Bundle",
                "the transaction refers to more than one person's record",
            )),
        }
    }
}
