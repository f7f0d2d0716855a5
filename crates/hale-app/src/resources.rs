//! The FHIR interactions on single resources, history, search and `$everything`.

use std::collections::HashSet;

use hale_core::{Interaction, RecordId, RequestContext, ResourceId};
use hale_fhir::search::SearchQuery;
use hale_store::{Expect, HistoryQuery, SearchPage, StoredResource, WriteBatch, WriteOp};
use serde_json::Value;

use crate::access::{Access, Target, Verb};
use crate::placement::Placement;
use crate::{App, AppError, Written};

/// A write prepared for the store: checked, placed and indexed.
pub(crate) struct Prepared {
    pub placement: Placement,
    pub op: WriteOp,
}

impl App {
    /// Checks, places and indexes one resource write.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn prepare(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
        mut body: Value,
        expect: Expect,
        forced: Option<&Placement>,
        in_bundle: &HashSet<String>,
    ) -> Result<Prepared, AppError> {
        if let Some(obj) = body.as_object_mut() {
            obj.insert("id".into(), Value::String(id.to_owned()));
        }
        let access = self.access(ctx)?;
        // Who entered it is the server's to say, never the client's.
        let by_person = access.writes_as_person();
        crate::tag_entered_by(&mut body, by_person);
        self.check_content(rtype, &body)?;
        // Only a system actor may look beyond its record to find where an id lives. A create
        // (expecting absence) needs no look: the store enforces it in the transaction.
        let mut label_before = None;
        let existing = match expect {
            Expect::Absent => None,
            _ => match self.store.read(self.scope(ctx), rtype, id)? {
                // What the actor may not see, it may not overwrite either; it answers as an
                // id taken in another record does.
                Some(e) if e.resource.is_some() && !self.visible_to(&access, &e) => {
                    return Err(id_not_available(rtype, id));
                }
                None if self.exists_elsewhere(ctx, rtype, id)? => {
                    return Err(id_not_available(rtype, id));
                }
                found => {
                    if let Some(current) = &found
                        && let Some(v) = current.value()
                    {
                        let target = Target::of(&current.record, rtype, id, &v);
                        self.check(&access, Verb::Update, &target)?;
                    }
                    label_before = found
                        .as_ref()
                        .and_then(StoredResource::value)
                        .and_then(|v| crate::labels::label_in(&v));
                    found.map(|e| e.record)
                }
            },
        };
        crate::labels::label_on_write(&mut body, by_person, label_before);
        let placement = self.place(
            ctx,
            rtype,
            id,
            &mut body,
            existing.as_ref(),
            forced,
            in_bundle,
        )?;
        // What is written must itself be the actor's to write (a grantee within the grant's
        // labels and types; nobody writes a grant directly).
        let written = Target::of(&placement.record, rtype, id, &body);
        self.check(&access, Verb::Create, &written)?;
        let index = hale_fhir::index::extract(self.defs, rtype, &body);
        Ok(Prepared {
            op: WriteOp::Put {
                record: placement.record.clone(),
                resource_type: rtype.to_owned(),
                id: id.to_owned(),
                expect,
                resource: body,
                index,
            },
            placement,
        })
    }

    fn write_prepared(
        &self,
        ctx: &RequestContext,
        prepared: Prepared,
    ) -> Result<StoredResource, AppError> {
        let mut ops = Vec::with_capacity(3);
        if prepared.placement.new_record {
            ops.push(WriteOp::CreateRecord {
                record: prepared.placement.record.clone(),
            });
        }
        let what = match &prepared.op {
            WriteOp::Put {
                resource_type, id, ..
            } => format!("{resource_type}/{id}"),
            _ => String::new(),
        };
        let record = prepared.placement.record.clone();
        ops.push(prepared.op);
        let n = ops.len();
        // The entry shares the change's transaction: both are kept, or neither.
        ops.push(WriteOp::Audit(
            self.audit_entry(ctx, &record, "write", what),
        ));
        let out = self.store.write(WriteBatch { ops })?;
        out.results
            .into_iter()
            .nth(n - 1)
            .flatten()
            .ok_or_else(|| AppError::Internal("the store returned no result for a write".into()))
    }

    /// Whether `rtype/id` exists (or existed) in a record other than the actor's.
    pub(crate) fn exists_elsewhere(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
    ) -> Result<bool, AppError> {
        Ok(match self.scope(ctx) {
            Some(own) => self
                .store
                .read(None, rtype, id)?
                .is_some_and(|r| &r.record != own),
            None => false,
        })
    }

    /// `GET [type]/[id]`, recorded in the audit log.
    pub fn read(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
    ) -> Result<StoredResource, AppError> {
        let found = match self.read_unaudited(ctx, rtype, id) {
            Ok(found) => found,
            Err(e @ AppError::NotFound { .. }) => {
                self.audit_refused_read(ctx, rtype, id)?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        self.audit_reads(ctx, "read", &format!("{rtype}/{id}"), [&found.record])?;
        Ok(found)
    }

    /// A read for the application's own checks (before a delete), not shown to anyone.
    pub(crate) fn read_unaudited(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
    ) -> Result<StoredResource, AppError> {
        self.require(ctx, rtype, Interaction::Read)?;
        let access = self.access(ctx)?;
        if rtype == "Observation" && id.starts_with(crate::daily::DAILY) {
            let found = match self.scope(ctx) {
                Some(record) if access.sees_samples() => self.read_daily(record, id)?,
                _ => None,
            };
            return found.ok_or_else(|| AppError::NotFound {
                resource_type: rtype.into(),
                id: id.into(),
            });
        }
        let found = self
            .store
            .read(self.scope(ctx), rtype, id)?
            .filter(|r| self.visible_to(&access, r))
            .ok_or_else(|| AppError::NotFound {
                resource_type: rtype.into(),
                id: id.into(),
            })?;
        if found.resource.is_none() {
            // For an actor who sees only part of the record, whether a deleted entry was
            // once visible to them is not known here: it answers as never there.
            if access.is_narrowed() {
                return Err(AppError::NotFound {
                    resource_type: rtype.into(),
                    id: id.into(),
                });
            }
            return Err(AppError::Gone {
                resource_type: rtype.into(),
                id: id.into(),
            });
        }
        Ok(found)
    }

    /// `GET [type]/[id]/_history/[vid]`.
    pub fn vread(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
        version: &str,
    ) -> Result<StoredResource, AppError> {
        self.require(ctx, rtype, Interaction::Read)?;
        let access = self.access(ctx)?;
        let not_found = || AppError::NotFound {
            resource_type: rtype.into(),
            id: format!("{id}/_history/{version}"),
        };
        let v: i64 = version.parse().map_err(|_| not_found())?;
        let found = self
            .store
            .vread(self.scope(ctx), rtype, id, v)?
            .filter(|r| self.visible_to(&access, r))
            .ok_or_else(not_found)?;
        if found.resource.is_none() && access.is_narrowed() {
            return Err(not_found());
        }
        if found.resource.is_none() {
            return Err(AppError::Gone {
                resource_type: rtype.into(),
                id: id.into(),
            });
        }
        self.audit_reads(
            ctx,
            "read",
            &format!("{rtype}/{id}/_history/{version}"),
            [&found.record],
        )?;
        Ok(found)
    }

    /// `POST [type]`, with an optional `If-None-Exist` query (conditional create).
    pub fn create(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        body: Value,
        if_none_exist: Option<&str>,
    ) -> Result<Written, AppError> {
        self.require(ctx, rtype, Interaction::Create)?;
        if let Some(query) = if_none_exist {
            let pairs = parse_query(query.split_once('?').map_or(query, |(_, q)| q));
            match self.matches(ctx, rtype, &pairs)?.as_slice() {
                [] => {}
                [one] => {
                    return Ok(Written {
                        resource: one.clone(),
                        created: false,
                    });
                }
                _ => {
                    return Err(AppError::PreconditionFailed(
                        "If-None-Exist matched more than one resource".into(),
                    ));
                }
            }
        }
        // The server assigns the id of a created resource (FHIR R4 §3.1.0.7).
        let id = ResourceId::generate();
        let prepared = self.prepare(
            ctx,
            rtype,
            id.as_str(),
            body,
            Expect::Absent,
            None,
            &HashSet::new(),
        )?;
        Ok(Written {
            resource: self.write_prepared(ctx, prepared)?,
            created: true,
        })
    }

    /// `PUT [type]/[id]`: update, or create with the client's id.
    pub fn update(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
        body: Value,
        if_match: Option<i64>,
    ) -> Result<Written, AppError> {
        self.require(ctx, rtype, Interaction::Update)?;
        let id = ResourceId::parse(id).map_err(|e| AppError::bad_request("id", e.to_string()))?;
        match body.get("id").and_then(Value::as_str) {
            Some(body_id) if body_id == id.as_str() => {}
            Some(_) => {
                return Err(AppError::bad_request(
                    "id",
                    "the id in the body differs from the id in the URL",
                ));
            }
            None => {
                return Err(AppError::bad_request(
                    "id",
                    "an update must carry the resource's id",
                ));
            }
        }
        let expect = if_match.map_or(Expect::Any, Expect::Version);
        let prepared =
            self.prepare(ctx, rtype, id.as_str(), body, expect, None, &HashSet::new())?;
        let stored = self.write_prepared(ctx, prepared)?;
        let created = stored.method == hale_store::Method::Create;
        Ok(Written {
            resource: stored,
            created,
        })
    }

    /// `PUT [type]?[search]`: update the one match, or create when there is none.
    pub fn conditional_update(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        query: &str,
        mut body: Value,
        if_match: Option<i64>,
    ) -> Result<Written, AppError> {
        self.require(ctx, rtype, Interaction::Update)?;
        let pairs = parse_query(query);
        match self.matches(ctx, rtype, &pairs)?.as_slice() {
            [] => {
                let id = match body.get("id").and_then(Value::as_str) {
                    Some(id) => id.to_owned(),
                    None => ResourceId::generate().to_string(),
                };
                if let Some(o) = body.as_object_mut() {
                    o.insert("id".into(), Value::String(id.clone()));
                }
                self.update(ctx, rtype, &id, body, if_match)
            }
            [one] => {
                match body.get("id").and_then(Value::as_str) {
                    Some(i) if i != one.id => {
                        return Err(AppError::bad_request(
                            "id",
                            "the id in the body differs from the matched resource",
                        ));
                    }
                    _ => {}
                }
                if let Some(o) = body.as_object_mut() {
                    o.insert("id".into(), Value::String(one.id.clone()));
                }
                self.update(ctx, rtype, &one.id.clone(), body, if_match)
            }
            _ => Err(AppError::PreconditionFailed(
                "the conditional update matched more than one resource".into(),
            )),
        }
    }

    /// `PATCH [type]/[id]` with a JSON Patch (RFC 6902).
    pub fn patch(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
        patch: Value,
        if_match: Option<i64>,
    ) -> Result<Written, AppError> {
        self.require(ctx, rtype, Interaction::Update)?;
        let current = self.read(ctx, rtype, id)?;
        if let Some(v) = current.value() {
            let target = Target::of(&current.record, rtype, id, &v);
            self.check(&self.access(ctx)?, Verb::Update, &target)?;
        }
        if let Some(v) = if_match
            && v != current.version
        {
            return Err(AppError::PreconditionFailed(format!(
                "{rtype}/{id} is at version {}, not {v}",
                current.version
            )));
        }
        let ops: json_patch::Patch = serde_json::from_value(patch).map_err(|_| {
            AppError::bad_request(
                "",
                "the body must be a JSON Patch document (an array of operations)",
            )
        })?;
        let mut doc = current.value().unwrap_or(Value::Null);
        json_patch::patch(&mut doc, &ops).map_err(|e| {
            AppError::unprocessable("", format!("the patch cannot be applied: {}", e.kind))
        })?;
        if doc.get("id").and_then(Value::as_str) != Some(id)
            || doc.get("resourceType").and_then(Value::as_str) != Some(rtype)
        {
            return Err(AppError::unprocessable(
                "",
                "a patch must not change the id or resourceType",
            ));
        }
        self.update(ctx, rtype, id, doc, Some(current.version))
    }

    /// `DELETE [type]/[id]`.
    pub fn delete(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(), AppError> {
        self.require(ctx, rtype, Interaction::Delete)?;
        let current = self.read_unaudited(ctx, rtype, id)?;
        if let Some(v) = current.value() {
            let target = Target::of(&current.record, rtype, id, &v);
            self.check(&self.access(ctx)?, Verb::Delete, &target)?;
        }
        if rtype == "Patient" && current.record.as_str() == id {
            return Err(AppError::unprocessable(
                "Patient",
                "the record's own Patient cannot be deleted on its own; erase the whole record instead",
            ));
        }
        let entry = self.audit_entry(ctx, &current.record, "delete", format!("{rtype}/{id}"));
        self.store.write(WriteBatch {
            ops: vec![
                WriteOp::Delete {
                    record: current.record,
                    resource_type: rtype.into(),
                    id: id.into(),
                    expect: if_match.map_or(Expect::Any, Expect::Version),
                },
                WriteOp::Audit(entry),
            ],
        })?;
        Ok(())
    }

    /// `GET [type]/[id]/_history` and `GET [type]/_history`.
    pub fn history(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: Option<&str>,
        count: usize,
        since: Option<i64>,
    ) -> Result<Vec<StoredResource>, AppError> {
        self.require(ctx, rtype, Interaction::Read)?;
        let access = self.access(ctx)?;
        if id.is_none() && matches!(access, Access::Organisation { .. }) {
            return Err(AppError::bad_request(
                "",
                "an organisation's system reads the history of one entry at a time",
            ));
        }
        let mut versions = self.store.history(
            self.scope(ctx),
            &HistoryQuery {
                resource_type: Some(rtype.into()),
                id: id.map(str::to_owned),
                since,
                count: count.clamp(1, hale_fhir::search::MAX_COUNT),
            },
        )?;
        if access.is_narrowed() {
            // A resource is shown with all its versions (deletion markers too) or not at all:
            // shown if its newest version with content is visible.
            let mut seen = HashSet::new();
            let mut shown = HashSet::new();
            for v in versions.iter().filter(|v| v.resource.is_some()) {
                if seen.insert(v.id.clone()) && self.visible_to(&access, v) {
                    shown.insert(v.id.clone());
                }
            }
            versions.retain(|v| shown.contains(&v.id));
        }
        if let Some(id) = id
            && versions.is_empty()
        {
            return Err(AppError::NotFound {
                resource_type: rtype.into(),
                id: id.into(),
            });
        }
        let what = match id {
            Some(id) => format!("{rtype}/{id}/_history"),
            None => format!("{rtype}/_history"),
        };
        let records = versions.iter().map(|v| &v.record);
        self.audit_reads(
            ctx,
            "history",
            &what,
            self.scope(ctx).into_iter().chain(records),
        )?;
        Ok(versions)
    }

    /// `GET [type]?…`: a search, Observation searches including the daily summaries of
    /// wearable samples.
    pub fn search(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        pairs: &[(String, String)],
        strict: bool,
    ) -> Result<(SearchQuery, SearchPage), AppError> {
        let (query, mut page, access, scope) = self.search_stored(ctx, rtype, pairs, strict)?;
        if let Some(record) = &scope {
            let computed = match rtype {
                "Observation" if access.sees_samples() => self.daily_matches(record, &query)?,
                "AuditEvent" if access.grant().is_none() => {
                    self.audit_event_matches(record, &query)?
                }
                _ => Vec::new(),
            };
            self.append_computed(record, &query, &mut page, computed)?;
        }
        Ok((query, page))
    }

    /// A search of stored entries only (the web app's lists, which show wearable data as
    /// charts rather than as a day-by-day list).
    pub fn search_entries(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        pairs: &[(String, String)],
        strict: bool,
    ) -> Result<(SearchQuery, SearchPage), AppError> {
        let (query, page, ..) = self.search_stored(ctx, rtype, pairs, strict)?;
        Ok((query, page))
    }

    /// A search of stored entries, with the access it ran under and the record it was
    /// confined to (`None`: every record the actor reaches).
    fn search_stored(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        pairs: &[(String, String)],
        strict: bool,
    ) -> Result<(SearchQuery, SearchPage, Access, Option<RecordId>), AppError> {
        self.require(ctx, rtype, Interaction::Search)?;
        let (access, scope, across) = self.search_scope(ctx, rtype, pairs)?;
        let asked = pairs;
        // The access rules as index clauses, so counts and paging agree with what is shown.
        let mut pairs = pairs.to_vec();
        pairs.extend(access.search_clauses(rtype));
        let query = hale_fhir::search::parse(self.defs, rtype, &pairs, strict)
            .map_err(|i| AppError::BadRequest(vec![i]))?;
        if access.is_narrowed() && query.clauses.iter().any(chains_past_patient) {
            return Err(AppError::Forbidden(
                "searches that follow a reference into other entries are not available with this access; search those entries directly".into(),
            ));
        }

        refuse_unindexed_across(scope.as_ref(), &query)?;
        let mut page = if !access.may_search(rtype) {
            empty_page(&query)
        } else if across {
            self.search_across(&access, &query)?
        } else {
            self.store.search(scope.as_ref(), &query)?
        };
        // Included resources are shown only where the scopes and the access rules allow.
        page.included.retain(|r| {
            ctx.actor.allows(&r.resource_type, Interaction::Read) && self.visible_to(&access, r)
        });
        // The clauses above already confine the matches; this is the rule itself, applied
        // again (and the only filter for Patients other than the record's own).
        page.matches.retain(|r| self.visible_to(&access, r));
        // One entry for each record whose data the answer holds; a search of one's own
        // record is recorded even when it finds nothing.
        let what = crate::audit::search_what(rtype, asked);
        let aimed = self.aimed_at(ctx, &query);
        let records = page.matches.iter().chain(&page.included).map(|r| &r.record);
        let touched = scope.iter().chain(&aimed).chain(records);
        self.audit_reads(ctx, "search", &what, touched)?;
        Ok((query, page, access, scope))
    }

    /// Where a search looks and under which access. The person, their apps and grantees:
    /// their record. An operator: every record, or the one record of the patient a search
    /// names (`patient`, `subject`), since clinical entries are indexed record by record
    /// (see [`refuse_unindexed_across`]). An organisation's system: one person's
    /// record at a time, named by `patient` or `subject` (or a Patient's `_id`), under the
    /// grant there; a record that has not given the organisation access finds nothing, as
    /// one that does not exist would. Only a Patient search by `identifier` looks across
    /// the records that gave it access (`true`), so that a system can find the person it
    /// knows by NHS number.
    fn search_scope(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        pairs: &[(String, String)],
    ) -> Result<(Access, Option<RecordId>, bool), AppError> {
        let access = self.access(ctx)?;
        let named = named_patients(rtype, pairs);
        match access {
            Access::Organisation { .. } => {}
            Access::System => {
                let scope = match one_patient(&named) {
                    Some(one) => self.record_of_patient(one)?,
                    None => None,
                };
                return Ok((access, scope, false));
            }
            _ => return Ok((access, self.scope(ctx).cloned(), false)),
        }
        match (one_patient(&named), named.is_empty()) {
            (Some(one), _) => match RecordId::parse(one) {
                Ok(record) => Ok((access.in_record(&record), Some(record), false)),
                // No record has that id: the search finds nothing, as for any record
                // that has not given the organisation access.
                Err(_) => Ok((Access::Organisation { within: Vec::new() }, None, false)),
            },
            (None, true) if rtype == "Patient" && pairs.iter().any(|(k, _)| k == "identifier") => {
                Ok((access, None, true))
            }
            _ => Err(AppError::bad_request(
                "patient",
                "an organisation's system searches one person's record at a time: add patient=Patient/ID (find the id with Patient?identifier=…)",
            )),
        }
    }

    /// The record a Patient is in (its own, or the one it is a linked copy in). A Patient
    /// that does not exist is looked for in the record of that id, and so finds nothing.
    fn record_of_patient(&self, id: &str) -> Result<Option<RecordId>, AppError> {
        Ok(match self.store.read(None, "Patient", id)? {
            Some(patient) => Some(patient.record),
            None => RecordId::parse(id).ok(),
        })
    }

    /// A Patient search across the records that gave an organisation access: the matches
    /// anywhere, narrowed to those it may see, then paged here (a search by identifier finds
    /// a handful at most).
    fn search_across(&self, access: &Access, query: &SearchQuery) -> Result<SearchPage, AppError> {
        let mut everywhere = query.clone();
        everywhere.offset = 0;
        everywhere.count = hale_fhir::search::MAX_COUNT;
        everywhere.summary_count = false;
        everywhere.total = hale_fhir::search::Total::None;
        everywhere.include.clear();
        everywhere.revinclude.clear();
        let mut seen = self.store.search(None, &everywhere)?.matches;
        seen.retain(|r| self.visible_to(access, r));
        let counted = query.summary_count || query.total == hale_fhir::search::Total::Accurate;
        let total = counted.then_some(seen.len() as i64);
        let matches = if query.summary_count {
            Vec::new()
        } else {
            seen.into_iter()
                .skip(query.offset)
                .take(query.count)
                .collect()
        };
        Ok(SearchPage {
            matches,
            included: Vec::new(),
            total,
        })
    }

    /// Resources Hale computes rather than stores (daily summaries of wearable samples, the
    /// audit log as AuditEvents) follow the stored matches of a search: the total counts
    /// both, and pages run on from the stored ones into the computed.
    fn append_computed(
        &self,
        record: &hale_core::RecordId,
        query: &SearchQuery,
        page: &mut SearchPage,
        computed: Vec<StoredResource>,
    ) -> Result<(), AppError> {
        if computed.is_empty() {
            return Ok(());
        }
        let stored_total = match page.total {
            Some(t) => usize::try_from(t).unwrap_or(0),
            None => {
                let mut counting = query.clone();
                counting.total = hale_fhir::search::Total::Accurate;
                counting.summary_count = true;
                let counted = self.store.search(Some(record), &counting)?;
                usize::try_from(counted.total.unwrap_or(0)).unwrap_or(0)
            }
        };
        if page.total.is_some() {
            page.total = Some((stored_total + computed.len()) as i64);
        }
        if query.summary_count || query.offset + page.matches.len() < stored_total {
            return Ok(());
        }
        let skip = query.offset.saturating_sub(stored_total);
        let room = query.count.saturating_sub(page.matches.len());
        page.matches
            .extend(computed.into_iter().skip(skip).take(room));
        Ok(())
    }

    /// The records a system client's search names (`patient=X`): it looked at them even if it
    /// found nothing there.
    fn aimed_at(&self, ctx: &RequestContext, query: &SearchQuery) -> Vec<hale_core::RecordId> {
        if self.scope(ctx).is_some() {
            return Vec::new();
        }
        query
            .clauses
            .iter()
            .filter(|c| c.param == "patient" || c.param == "subject")
            .filter_map(|c| match &c.test {
                hale_fhir::search::Test::Reference(refs) => Some(refs),
                _ => None,
            })
            .flatten()
            .filter_map(|r| match r {
                hale_fhir::search::RefMatch::Local { target_type, id }
                    if target_type.as_deref().is_none_or(|t| t == "Patient") =>
                {
                    hale_core::RecordId::parse(id).ok()
                }
                _ => None,
            })
            .filter(|r| self.store.record_exists(r).unwrap_or(false))
            .collect()
    }

    /// The current matches of a search (for conditional operations), all of them.
    fn matches(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        pairs: &[(String, String)],
    ) -> Result<Vec<StoredResource>, AppError> {
        if pairs.is_empty() {
            return Err(AppError::bad_request(
                "",
                "a conditional operation needs search parameters",
            ));
        }
        let (access, scope, across) = self.search_scope(ctx, rtype, pairs)?;
        if across {
            return Err(AppError::bad_request(
                "patient",
                "a conditional operation by an organisation's system names the patient",
            ));
        }
        let mut pairs = pairs.to_vec();
        pairs.extend(access.search_clauses(rtype));
        pairs.push(("_count".into(), "2".into()));
        let query = hale_fhir::search::parse(self.defs, rtype, &pairs, true)
            .map_err(|i| AppError::BadRequest(vec![i]))?;
        refuse_unindexed_across(scope.as_ref(), &query)?;
        if access.is_narrowed() && query.clauses.iter().any(chains_past_patient) {
            return Err(AppError::Forbidden(
                "conditional operations that follow a reference are not available with this access"
                    .into(),
            ));
        }
        let mut found = if access.may_search(rtype) {
            self.store.search(scope.as_ref(), &query)?.matches
        } else {
            Vec::new()
        };
        found.retain(|r| self.visible_to(&access, r));
        Ok(found)
    }

    /// `GET Patient/[id]/$everything`: every resource of the patient's record the actor may read.
    pub fn everything(
        &self,
        ctx: &RequestContext,
        patient_id: &str,
    ) -> Result<Vec<StoredResource>, AppError> {
        let patient = self.read_unaudited(ctx, "Patient", patient_id)?;
        let access = self.access(ctx)?;
        let mut all = self.store.everything(&patient.record)?;
        all.retain(|r| {
            ctx.actor.allows(&r.resource_type, Interaction::Read) && self.visible_to(&access, r)
        });
        self.audit_reads(
            ctx,
            "everything",
            &format!("Patient/{patient_id}/$everything"),
            [&patient.record],
        )?;
        Ok(all)
    }
}

impl App {
    /// Everything in the person's own record that they can see, for them to take away (the
    /// right of access and to portability): the person themselves only, both factors
    /// proven recently; recorded in the audit log as an export.
    pub fn export_record(
        &self,
        who: &crate::accounts::SignedIn,
        ctx: &RequestContext,
    ) -> Result<Vec<StoredResource>, AppError> {
        let record = self.owner_record(ctx)?;
        self.require_recent(who)?;
        let access = self.access(ctx)?;
        let mut all = self.store.everything(&record)?;
        all.retain(|r| self.visible_to(&access, r));
        self.audit_reads(ctx, "export", "the whole record", [&record])?;
        Ok(all)
    }
}

/// Readings per page of the readings download: a few hundred kilobytes of CSV at a time.
const READINGS_PAGE: usize = 5_000;

impl App {
    /// Every reading from apps and devices in the person's own record, as CSV for them to
    /// take away: one row a sample (metric, its unit, source, start, end, value; times in
    /// UTC), series by series and oldest first. Handed to `send` a page at a time, so a
    /// ten-year history streams in flat memory; stops early when `send` returns false. The
    /// same rules as [`App::export_record`]; recorded in the audit log as an export.
    /// Returns how many readings were sent.
    pub fn export_readings(
        &self,
        who: &crate::accounts::SignedIn,
        ctx: &RequestContext,
        send: &mut dyn FnMut(Vec<u8>) -> bool,
    ) -> Result<u64, AppError> {
        let record = self.owner_record(ctx)?;
        self.require_recent(who)?;
        self.send_readings(ctx, &record, send)
    }

    /// Everything a record holds, whatever its labels, and its readings as CSV, for an
    /// operator answering the person's request made another way (a subject access request
    /// by letter, an account they cannot get into). Recorded in the audit log as an export
    /// by the operator. Returns how many resources and readings there were.
    pub fn export_for_operator(
        &self,
        operator: &RequestContext,
        record: &RecordId,
        send_readings: &mut dyn FnMut(Vec<u8>) -> bool,
    ) -> Result<(Vec<StoredResource>, u64), AppError> {
        require_operator(operator)?;
        let all = self.store.everything(record)?;
        if all.is_empty() {
            return Err(AppError::NotFound {
                resource_type: "Patient".into(),
                id: record.to_string(),
            });
        }
        self.audit_reads(operator, "export", "the whole record", [record])?;
        let readings = self.send_readings(operator, record, send_readings)?;
        Ok((all, readings))
    }

    /// Erases a record and the accounts that own it, for an operator answering the person's
    /// request made another way; see [`App::erase_account`]. Recorded in the audit log.
    pub fn erase_for_operator(
        &self,
        operator: &RequestContext,
        record: &RecordId,
    ) -> Result<(), AppError> {
        require_operator(operator)?;
        let entry = self.audit_entry(
            operator,
            record,
            "erase",
            "the record and its accounts".into(),
        );
        self.store.write(WriteBatch {
            ops: vec![
                WriteOp::Audit(entry),
                WriteOp::EraseRecord {
                    record: record.clone(),
                },
            ],
        })?;
        Ok(())
    }

    fn send_readings(
        &self,
        ctx: &RequestContext,
        record: &RecordId,
        send: &mut dyn FnMut(Vec<u8>) -> bool,
    ) -> Result<u64, AppError> {
        let record = record.clone();
        self.audit_reads(
            ctx,
            "export-readings",
            "readings from apps and devices",
            [&record],
        )?;
        let mut sent = 0u64;
        let mut last: Option<hale_store::SampleRow> = None;
        loop {
            let page = self
                .store
                .samples_after(&record, last.as_ref(), READINGS_PAGE)?;
            let chunk = readings_csv(&page, last.is_none())
                .map_err(|_| AppError::Internal("the readings could not be written".into()))?;
            sent += page.len() as u64;
            if !send(chunk) || page.len() < READINGS_PAGE {
                return Ok(sent);
            }
            last = page.into_iter().last();
        }
    }
}

/// Resources as one FHIR Bundle (`collection`) to take away, each with its address on the
/// server at `base` when there is one.
pub fn export_bundle(all: &[StoredResource], base: Option<&str>) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = all
        .iter()
        .filter_map(|r| {
            let mut entry = serde_json::json!({ "resource": r.value()? });
            if let Some(base) = base {
                entry["fullUrl"] = format!("{base}/fhir/{}/{}", r.resource_type, r.id).into();
            }
            Some(entry)
        })
        .collect();
    serde_json::json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": hale_fhir::date::format_instant(hale_fhir::date::now_millis()),
        "total": entries.len(),
        "entry": entries,
    })
}

fn require_operator(ctx: &RequestContext) -> Result<(), AppError> {
    if matches!(ctx.actor, hale_core::Actor::System { .. }) {
        Ok(())
    } else {
        Err(AppError::Forbidden("only an operator does this".into()))
    }
}

/// Readings as CSV rows, after a header row if `header`.
fn readings_csv(rows: &[hale_store::SampleRow], header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut csv = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 80));
    if header {
        csv.write_record(["metric", "unit", "source", "start", "end", "value"])?;
    }
    for s in rows {
        let unit = hale_import::metrics::by_id(&s.metric).map_or("", |m| m.unit);
        csv.write_record([
            s.metric.as_str(),
            unit,
            s.source.as_str(),
            &hale_fhir::date::format_instant(s.start),
            &hale_fhir::date::format_instant(s.end),
            &s.value.to_string(),
        ])?;
    }
    csv.into_inner().map_err(|e| e.into_error().into())
}

/// Ids are unique per type across records, so an update naming an id the actor cannot see
/// cannot create it either: it answers in these words, whether the id is hidden in the
/// actor's own record or used in another.
fn id_not_available(rtype: &str, id: &str) -> AppError {
    AppError::Conflict(format!("the id {rtype}/{id} is not available"))
}

/// The patients a search names as whose entries it wants (`patient`, `subject`, or a
/// Patient's `_id`), as ids.
fn named_patients<'a>(rtype: &str, pairs: &'a [(String, String)]) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "patient" | "subject" | "patient:Patient" | "subject:Patient"
            ) || (rtype == "Patient" && k == "_id")
        })
        .map(|(_, v)| v.strip_prefix("Patient/").unwrap_or(v))
        .collect()
}

/// The one patient a search names, however many times; none if it names several or none.
fn one_patient<'a>(named: &[&'a str]) -> Option<&'a str> {
    match named {
        [one, rest @ ..] if rest.iter().all(|r| r == one) && !one.contains(',') => Some(one),
        _ => None,
    }
}

/// A search across every record must be driven by a cross-record index (an `_id`, or a
/// Patient's or a Consent's code: [`hale_store::sql::SEARCHED_ACROSS_RECORDS`]); any other
/// would read every record's index, so it is refused rather than run.
pub(crate) fn refuse_unindexed_across(
    scope: Option<&RecordId>,
    query: &SearchQuery,
) -> Result<(), AppError> {
    let indexed = |c: &hale_fhir::search::Clause| {
        hale_store::sql::globally_indexed(&query.resource_type, &c.test)
    };
    if scope.is_none() && !query.clauses.is_empty() && !query.clauses.iter().any(indexed) {
        return Err(AppError::BadRequest(vec![hale_fhir::Issue::error(
            hale_fhir::IssueCode::TooCostly,
            "",
            "a search across every record needs an _id, or a Patient's identifier: name the person with patient=Patient/ID (find the id with Patient?identifier=…)",
        )]));
    }
    Ok(())
}

/// Whether a clause looks into other entries than those searched (a chain into anything but
/// a Patient, whose visibility does not depend on labels; any `_has`): an actor who sees part
/// of a record could learn of entries hidden from it that way, so it is refused whatever is
/// stored.
fn chains_past_patient(c: &hale_fhir::search::Clause) -> bool {
    match &c.test {
        hale_fhir::search::Test::Chain { target_type, .. } => target_type != "Patient",
        hale_fhir::search::Test::Has { .. } => true,
        _ => false,
    }
}

/// The answer of a search that finds nothing (nothing of its kind is shared).
fn empty_page(query: &SearchQuery) -> SearchPage {
    let counted = query.summary_count || query.total == hale_fhir::search::Total::Accurate;
    SearchPage {
        matches: Vec::new(),
        included: Vec::new(),
        total: counted.then_some(0),
    }
}

/// `a=1&b=2` into decoded pairs.
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}
