//! Who did what with record data. Every read, search, history, `$everything`, write and import
//! becomes an entry in the hash-chained audit log (`hale_store::audit`): writes in the same
//! transaction as the change; reads through a queue that a background thread appends every
//! second in one transaction (a durable write per read cut reads by id from about 14,000 to
//! 2,850 a second). Anything that reads the log drains the queue first, so the log is
//! complete whenever it is looked at; a crash can lose the reads of the last second, never a
//! change's entry. Entries name resources and search parameters, never values.

use hale_core::{Actor, RecordId, RequestContext};
use hale_fhir::search::{SearchQuery, Test, TokenMatch};
use hale_store::{
    AuditEntry, Checkpoint, Method, StoredAuditEntry, StoredResource, Verification, WriteBatch,
    WriteOp,
};
use serde_json::json;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a read's entry may wait before the queue is written. Every commit makes each
/// SQLite reader drop its page cache (WAL mode cannot tell which pages changed), so each
/// read after it reads and decrypts its pages afresh. On a small database (20,000
/// resources) reads by id ran at about 7,500 a second at 20 ms, 11,000–13,000 at 250 ms,
/// and little more at 1 s. At 1 M resources, where nearly every page must be read again,
/// 1 s rather than 250 ms took them from 8,200–9,400 to 11,100–11,600 a second (p99 9.4–9.9
/// → 7.2 ms).
const QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Read entries waiting to be appended.
#[derive(Default)]
pub(crate) struct AuditQueue {
    pending: Mutex<Vec<AuditEntry>>,
    wake: Condvar,
    /// Held while entries taken from the queue are being written, so that whoever drains the
    /// queue to read the log waits for a write already under way.
    writing: Mutex<()>,
    /// Set when the app goes: the background writer stops waiting and ends.
    closing: AtomicBool,
}

impl AuditQueue {
    fn push(&self, entries: impl IntoIterator<Item = AuditEntry>) {
        if let Ok(mut p) = self.pending.lock() {
            p.extend(entries);
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<AuditEntry> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }

    /// Writes everything queued; on failure the entries go back to wait for the next try.
    fn drain_into(&self, store: &dyn hale_store::Store) -> Result<(), AppError> {
        let _writing = self.writing.lock();
        let batch = self.take();
        append(store, batch.clone()).inspect_err(|_| self.put_back(batch))
    }

    fn put_back(&self, mut entries: Vec<AuditEntry>) {
        if let Ok(mut p) = self.pending.lock() {
            entries.append(&mut p);
            *p = entries;
        }
    }
}

/// Appends `entries` in one transaction.
fn append(store: &dyn hale_store::Store, entries: Vec<AuditEntry>) -> Result<(), AppError> {
    if entries.is_empty() {
        return Ok(());
    }
    store.write(WriteBatch {
        ops: vec![WriteOp::AuditAll(entries)],
    })?;
    Ok(())
}

/// Writes the queue every [`QUEUE_WAIT`] while it holds anything, until [`stop_audit_writer`].
pub(crate) fn start_audit_writer(
    store: Arc<dyn hale_store::Store>,
    queue: Arc<AuditQueue>,
) -> Option<JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("hale-audit".into())
        .spawn(move || {
            let closing = || queue.closing.load(Ordering::Acquire);
            while !closing() {
                // Asleep until something is queued, then gathering for QUEUE_WAIT.
                if let Ok(p) = queue.pending.lock() {
                    drop(queue.wake.wait_while(p, |p| p.is_empty() && !closing()));
                }
                if let Ok(p) = queue.pending.lock() {
                    drop(queue.wake.wait_timeout_while(p, QUEUE_WAIT, |_| !closing()));
                }
                if let Err(e) = queue.drain_into(store.as_ref()) {
                    tracing::error!(error = %e, "audit entries not yet written; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        });
    match spawned {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::error!(error = %e, "the audit writer did not start: reads are logged when the log is read or the app stops");
            None
        }
    }
}

/// Ends the background writer, having written what it holds, and waits for it: it holds the
/// store, which closes its database files (SQLite's last connection then checkpoints and
/// removes the WAL) only once the last holder lets go. A server that stopped without this left its WAL behind, at times gigabytes.
pub(crate) fn stop_audit_writer(queue: &AuditQueue, thread: Option<JoinHandle<()>>) {
    // Under the queue's lock, so the writer cannot miss it between its check and its wait.
    if let Ok(_pending) = queue.pending.lock() {
        queue.closing.store(true, Ordering::Release);
        queue.wake.notify_all();
    }
    if let Some(thread) = thread {
        let _ = thread.join();
    }
}

use crate::{App, AppError};

/// Who an actor is in the log, for whom it acted, and why.
fn who(ctx: &RequestContext, record: &RecordId) -> (String, Option<String>, &'static str) {
    match &ctx.actor {
        Actor::Record {
            record: own,
            subject,
            ..
        } => {
            let purpose = if own == record { "personal" } else { "care" };
            (subject.clone(), None, purpose)
        }
        // An app the person connected: the person, through the app.
        Actor::Grantee {
            subject,
            app: Some(_),
            ..
        } => (subject.clone(), None, "personal"),
        Actor::Grantee {
            record: own,
            subject,
            ..
        } => {
            // Someone acting for the person: the entry says for whom. A professional at an
            // organisation the person gave access to gives care, rather than acting for them.
            let person = (own == record).then(|| format!("record:{own}"));
            let purpose = if subject.contains("@org:") {
                "care"
            } else {
                "proxy"
            };
            (subject.clone(), person, purpose)
        }
        // An organisation's system, under the grant the person gave the organisation.
        Actor::Organisation { org, .. } => (format!("org:{org}"), None, "care"),
        Actor::System { subject, .. } => (format!("system:{subject}"), None, "operations"),
    }
}

impl App {
    /// An entry for `action` on `what` in `record`, by the request's actor.
    pub(crate) fn audit_entry(
        &self,
        ctx: &RequestContext,
        record: &RecordId,
        action: &str,
        what: String,
    ) -> AuditEntry {
        let (actor, on_behalf_of, purpose) = who(ctx, record);
        AuditEntry {
            at: hale_fhir::date::now_millis(),
            record: Some(record.clone()),
            actor,
            on_behalf_of,
            app: ctx.actor.app().map(str::to_owned),
            action: action.to_owned(),
            what,
            purpose: purpose.to_owned(),
            outcome: "ok".to_owned(),
            request_id: ctx.request_id.clone(),
        }
    }

    /// Records a read of each of `records` (one entry per record whose data was returned).
    pub(crate) fn audit_reads<'a>(
        &self,
        ctx: &RequestContext,
        action: &str,
        what: &str,
        records: impl IntoIterator<Item = &'a RecordId>,
    ) -> Result<(), AppError> {
        let mut seen: Vec<&RecordId> = Vec::new();
        for r in records {
            if !seen.contains(&r) {
                seen.push(r);
            }
        }
        let entries: Vec<AuditEntry> = seen
            .into_iter()
            .map(|r| self.audit_entry(ctx, r, action, what.to_owned()))
            .collect();
        if !entries.is_empty() {
            self.audit_queue.push(entries);
        }
        Ok(())
    }

    /// A read that was answered "not found" although the entry exists (hidden from the actor,
    /// or in another record) is recorded in the record it is in, with outcome `refused`: the
    /// person sees who tried. The actor learns nothing: their answer was already written.
    pub(crate) fn audit_refused_read(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
    ) -> Result<(), AppError> {
        if !self.defs.is_resource_type(rtype) || hale_core::ResourceId::parse(id).is_err() {
            return Ok(());
        }
        if let Some(target) = self.store.read(None, rtype, id)?
            && target.resource.is_some()
        {
            let mut entry = self.audit_entry(ctx, &target.record, "read", format!("{rtype}/{id}"));
            entry.outcome = "refused".into();
            self.audit_queue.push([entry]);
        }
        Ok(())
    }

    /// Appends every queued read now (before the log is read or checked).
    pub(crate) fn flush_audit(&self) -> Result<(), AppError> {
        self.audit_queue.drain_into(self.store.as_ref())
    }

    /// A record's log, newest first, for the person whose record it is (or an operator).
    /// Anyone else is answered as if the record did not exist.
    pub fn audit_of_record(
        &self,
        ctx: &RequestContext,
        record: &RecordId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredAuditEntry>, AppError> {
        // The log is the person's: someone acting for them does not see it.
        if ctx.actor.record().is_some_and(|r| r != record) || ctx.actor.grant().is_some() {
            return Err(AppError::NotFound {
                resource_type: "Patient".into(),
                id: record.to_string(),
            });
        }
        self.flush_audit()?;
        Ok(self
            .store
            .audit_of_record(record, before, limit.min(1000))?)
    }

    /// Walks the whole log (`hale audit verify`).
    pub fn audit_verify(&self) -> Result<Verification, AppError> {
        self.flush_audit()?;
        Ok(self.store.audit_verify()?)
    }

    /// Signs a checkpoint at the log's head and returns every checkpoint, oldest first.
    pub fn audit_checkpoint(&self) -> Result<Vec<Checkpoint>, AppError> {
        self.flush_audit()?;
        self.store.write(WriteBatch {
            ops: vec![WriteOp::AuditCheckpoint],
        })?;
        Ok(self.store.audit_checkpoints()?)
    }
}

/// The newest entries an AuditEvent search reaches (older ones: "Who has looked", paged).
const AUDIT_EVENTS: usize = 1000;

impl App {
    /// A record's log as FHIR AuditEvents, newest first, for an AuditEvent search by the
    /// person (or their app); empty when the search asks what the log cannot answer.
    pub(crate) fn audit_event_matches(
        &self,
        record: &RecordId,
        query: &SearchQuery,
    ) -> Result<Vec<StoredResource>, AppError> {
        let patient = record.patient_id();
        let mut dates = Vec::new();
        for clause in &query.clauses {
            match (clause.param.as_str(), &clause.test) {
                ("patient", Test::Reference(refs))
                    if refs.iter().any(|r| match r {
                        hale_fhir::search::RefMatch::Local { id, .. } => {
                            id.as_str() == patient.as_str()
                        }
                        hale_fhir::search::RefMatch::Url(_) => false,
                    }) => {}
                ("_tag", Test::Token { any, negate: false })
                    if any.iter().all(|t| {
                        *t == TokenMatch::SystemCode(
                            crate::ENTERED_BY.0.into(),
                            crate::ENTERED_BY.1.into(),
                        )
                    }) => {}
                ("date", Test::Date(alternatives)) => dates.push(alternatives),
                _ => return Ok(Vec::new()),
            }
        }
        self.flush_audit()?;
        let entries = self.store.audit_of_record(record, None, AUDIT_EVENTS)?;
        Ok(entries
            .iter()
            .filter(|e| {
                dates.iter().all(|alts| {
                    alts.iter()
                        .any(|(p, r)| p.admits_range(e.entry.at, e.entry.at, *r))
                })
            })
            .filter_map(|e| audit_event(record, e))
            .collect())
    }
}

/// One log entry as an R4 AuditEvent.
fn audit_event(record: &RecordId, e: &StoredAuditEntry) -> Option<StoredResource> {
    let (interaction, action) = match e.entry.action.as_str() {
        "read" => ("read", "R"),
        "search" => ("search-type", "E"),
        "history" => ("history-instance", "R"),
        "everything" => ("operation", "E"),
        "write" | "import" => ("update", "U"),
        "delete" => ("delete", "D"),
        _ => ("operation", "E"),
    };
    let what = &e.entry.what;
    let entity = if what.contains('?') || what.contains(' ') || what.contains(':') {
        json!({"what": {"display": what}})
    } else {
        json!({"what": {"reference": what}})
    };
    let id = format!("log-{}", e.seq);
    let body = json!({
        "resourceType": "AuditEvent",
        "id": id,
        "meta": {"versionId": "1", "lastUpdated": hale_fhir::date::format_instant(e.entry.at)},
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": interaction}],
        "action": action,
        "recorded": hale_fhir::date::format_instant(e.entry.at),
        "outcome": "0",
        "purposeOfEvent": [{"text": e.entry.purpose}],
        "agent": [{
            "who": {"display": e.entry.actor},
            "requestor": true,
        }],
        "source": {"observer": {"display": "Hale"}},
        "entity": [
            entity,
            {"what": {"reference": format!("Patient/{}", record.patient_id().as_str())},
             "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}},
        ],
    });
    Some(StoredResource {
        record: record.clone(),
        resource_type: "AuditEvent".into(),
        id,
        version: 1,
        last_updated: e.entry.at,
        method: Method::Create,
        resource: serde_json::value::to_raw_value(&body).ok(),
    })
}

/// A search as the log names it: the type and the parameters used, never their values.
pub(crate) fn search_what(rtype: &str, pairs: &[(String, String)]) -> String {
    let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        rtype.to_owned()
    } else {
        format!("{rtype}?{}", names.join("&"))
    }
}
