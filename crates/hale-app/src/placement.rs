//! Which record a resource belongs to, and whether its references may stand.
//!
//! A record is one person's Patient compartment, its id that Patient's id. A resource goes
//! into the actor's record; a system actor's resource goes into the record of the patient it
//! references (or, for a new Patient, into a new record). References to a patient must
//! resolve inside the record; a reference into another record is refused, with the same
//! words whether or not the target exists, so nothing leaks about other records.

use std::collections::HashSet;

use hale_core::{Actor, RecordId, RequestContext};
use hale_fhir::index::local_reference;
use serde_json::{Value, json};

use crate::{App, AppError};

/// Where a write goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The record.
    pub record: RecordId,
    /// Whether the write creates it.
    pub new_record: bool,
}

/// Every `Reference.reference` string in a resource (not inside contained resources, whose
/// references are relative to the container).
pub(crate) fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(obj) => {
            if let Some(Value::String(r)) = obj.get("reference") {
                out.push(r.clone());
            }
            for (k, child) in obj {
                if k != "contained" {
                    references(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references(i, out)),
        _ => {}
    }
}

/// Rewrites references found in `map` (transaction `urn:uuid:` full URLs to `Type/id`).
pub(crate) fn rewrite_references(v: &mut Value, map: &std::collections::HashMap<String, String>) {
    match v {
        Value::Object(obj) => {
            if let Some(Value::String(r)) = obj.get_mut("reference")
                && let Some(new) = map.get(r.as_str())
            {
                *r = new.clone();
            }
            for (_, child) in obj.iter_mut() {
                rewrite_references(child, map);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_references(i, map)),
        _ => {}
    }
}

impl App {
    /// Decides the record of a write and checks its references. `existing` is the resource's
    /// current record if it exists; `forced` is a transaction's record; `in_bundle` holds the
    /// `Type/id` of resources written by the same transaction (they resolve by construction).
    pub(crate) fn place(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
        resource: &mut Value,
        existing: Option<&RecordId>,
        forced: Option<&Placement>,
        in_bundle: &HashSet<String>,
    ) -> Result<Placement, AppError> {
        let mut refs = Vec::new();
        references(resource, &mut refs);
        let placement = if let Some(r) = existing {
            Placement {
                record: r.clone(),
                new_record: false,
            }
        } else if let Some(p) = forced {
            p.clone()
        } else {
            match &ctx.actor {
                Actor::Record { record, .. } | Actor::Grantee { record, .. } => Placement {
                    record: record.clone(),
                    new_record: false,
                },
                Actor::System { .. } if rtype == "Patient" => Placement {
                    record: RecordId::parse(id)?,
                    new_record: true,
                },
                Actor::System { .. } => self.record_of_patients(&refs, in_bundle)?,
                Actor::Organisation { .. } if rtype == "Patient" => {
                    return Err(AppError::Forbidden(
                        "an organisation's system adds to people's records; it cannot create one"
                            .into(),
                    ));
                }
                // A record that has not given the organisation access answers as a patient
                // that does not exist.
                Actor::Organisation { .. } => {
                    let placement = self.record_of_patients(&refs, in_bundle)?;
                    if !self.access(ctx)?.reaches(&placement.record) {
                        let patient = refs
                            .iter()
                            .find(|r| matches!(local_reference(r), Some(("Patient", _))))
                            .map_or("Patient", String::as_str);
                        return Err(not_in_record(patient));
                    }
                    placement
                }
            }
        };
        // A Patient that is not the record's own is a linked copy (a hospital's Patient).
        if rtype == "Patient" && id != placement.record.as_str() {
            link_to_record_patient(resource, &placement.record);
            refs.push(format!("Patient/{}", placement.record));
        }
        for r in &refs {
            self.check_reference(r, &placement, in_bundle)?;
        }
        Ok(placement)
    }

    /// The one existing record that a system actor's resource refers to through its patients.
    fn record_of_patients(
        &self,
        refs: &[String],
        in_bundle: &HashSet<String>,
    ) -> Result<Placement, AppError> {
        let mut records: HashSet<RecordId> = HashSet::new();
        for r in refs {
            if in_bundle.contains(r) {
                continue;
            }
            if let Some(("Patient", pid)) = local_reference(r) {
                match self.store.read(None, "Patient", pid)? {
                    Some(p) if p.resource.is_some() => {
                        records.insert(p.record);
                    }
                    _ => return Err(not_in_record(r)),
                }
            }
        }
        let mut it = records.into_iter();
        match (it.next(), it.next()) {
            (Some(record), None) => Ok(Placement {
                record,
                new_record: false,
            }),
            (None, _) => Err(AppError::unprocessable(
                "",
                "cannot tell which person's record this belongs to: reference their Patient, or write it in a transaction with them",
            )),
            (Some(_), Some(_)) => Err(AppError::unprocessable(
                "",
                "the resource refers to more than one person's record",
            )),
        }
    }

    fn check_reference(
        &self,
        r: &str,
        placement: &Placement,
        in_bundle: &HashSet<String>,
    ) -> Result<(), AppError> {
        if r.starts_with('#') || in_bundle.contains(r) {
            return Ok(());
        }
        if r.starts_with("urn:uuid:") || r.starts_with("urn:oid:") {
            return Err(AppError::unprocessable(
                "",
                "a urn: reference only resolves inside the transaction bundle that defines it",
            ));
        }
        let Some((rtype, id)) = local_reference(r) else {
            return Ok(()); // absolute and logical references are kept as given
        };
        if !self.defs.is_resource_type(rtype) {
            return Ok(());
        }
        let found = self.store.read(None, rtype, id)?;
        let inside = found
            .as_ref()
            .is_some_and(|f| f.record == placement.record && f.resource.is_some());
        match found {
            _ if inside => Ok(()),
            // A new record's patient is written in the same batch.
            None if placement.new_record
                && rtype == "Patient"
                && id == placement.record.as_str() =>
            {
                Ok(())
            }
            // References to a patient must resolve inside the record.
            _ if rtype == "Patient" => Err(not_in_record(r)),
            // Other references are kept as given, unless they point into another record.
            Some(f) if f.record != placement.record => Err(not_in_record(r)),
            _ => Ok(()),
        }
    }
}

/// The same words for "does not exist" and "belongs to someone else".
fn not_in_record(r: &str) -> AppError {
    AppError::unprocessable(
        "",
        format!("the reference {r} does not resolve to anything in this record"),
    )
}

fn link_to_record_patient(patient: &mut Value, record: &RecordId) {
    let target = format!("Patient/{record}");
    let Some(obj) = patient.as_object_mut() else {
        return;
    };
    let links = obj
        .entry("link")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = links {
        let present = items.iter().any(|l| {
            l.get("other")
                .and_then(|o| o.get("reference"))
                .and_then(Value::as_str)
                == Some(target.as_str())
        });
        if !present {
            items.push(json!({"other": {"reference": target}, "type": "seealso"}));
        }
    }
}
