//! The embedded R4 definitions (see `scripts/fhir-definitions.py` for what is kept).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::OnceLock;

use serde::Deserialize;

/// Maps of the definitions, looked up for every element of every resource validated:
/// foldhash rather than the standard SipHash, about a twelfth of the request threads' time
/// importing bundles. What they hold comes from the embedded definitions, not from requests.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<T> = HashSet<T, foldhash::fast::RandomState>;

static R4_GZ: &[u8] = include_bytes!("../definitions/r4.json.gz");

/// One element of a type, as the StructureDefinition snapshot gives it.
#[derive(Debug, Clone, Deserialize)]
pub struct ElementDef {
    /// Minimum cardinality.
    pub min: u32,
    /// Maximum cardinality: a number or `*`.
    pub max: String,
    /// Allowed type codes (several for a choice element `value[x]`).
    #[serde(default, rename = "t")]
    pub types: Vec<String>,
    /// For `contentReference` elements: the path whose definition applies.
    #[serde(default, rename = "ref")]
    pub content_ref: Option<String>,
    /// A required value set binding on a `code` element.
    #[serde(default, rename = "vs")]
    pub value_set: Option<String>,
}

impl ElementDef {
    /// Whether the element repeats (is a JSON array).
    pub fn is_array(&self) -> bool {
        self.max != "1" && self.max != "0"
    }
}

#[derive(Debug, Deserialize)]
struct TypeDef {
    kind: String,
    #[serde(rename = "abstract")]
    is_abstract: bool,
    elements: Map<String, ElementDef>,
    /// Each element path's direct children (name, path), built once after loading, so
    /// validation never scans a type's whole element list.
    #[serde(skip)]
    children: Map<String, Vec<(String, String)>>,
}

/// The type of a search parameter (FHIR R4 §3.1.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchParamType {
    /// Codes and identifiers.
    Token,
    /// Text, matched case- and accent-insensitively from the start.
    String,
    /// Dates and periods, as ranges.
    Date,
    /// References to other resources.
    Reference,
    /// A value with a unit.
    Quantity,
    /// A URI.
    Uri,
    /// A plain number.
    Number,
}

/// One step of a reduced FHIRPath: an element name, optionally filtered.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PathStep {
    /// The element name; a choice element may appear without its type suffix.
    pub name: String,
    /// `where(field='value')`.
    #[serde(default, rename = "where")]
    pub filter: Option<(String, String)>,
}

/// One union member of a search parameter's expression.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SearchPath {
    /// Steps from the resource root.
    pub steps: Vec<PathStep>,
    /// `where(resolve() is Type)`: only references to this type.
    #[serde(default, rename = "refType")]
    pub ref_type: Option<String>,
}

/// A search parameter of one resource type, from the official SearchParameter definitions.
#[derive(Debug, Clone, Deserialize)]
pub struct SearchParamDef {
    /// The code used in URLs (`code`, `subject`, `value-quantity`).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: SearchParamType,
    /// Where its values come from.
    pub paths: Vec<SearchPath>,
    /// For references: the types it may point to.
    #[serde(default)]
    pub targets: Vec<String>,
    /// The parameters whose index rows serve this one, when its expression is exactly their
    /// union (Observation's `combo-code` is `code` | `component-code`): it has no rows of
    /// its own, and a search on it reads theirs. Empty for every other parameter.
    #[serde(skip)]
    pub served_by: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Raw {
    resources: Vec<String>,
    types: Map<String, TypeDef>,
    valuesets: Map<String, Vec<String>>,
    search: Map<String, Vec<SearchParamDef>>,
    unsupported: Map<String, Vec<String>>,
    compartment: Map<String, Vec<String>>,
}

/// The official FHIR R4 definitions Hale works from.
#[derive(Debug)]
pub struct Definitions {
    resources: Vec<String>,
    resource_set: Set<String>,
    types: Map<String, TypeDef>,
    valuesets: Map<String, Set<String>>,
    search: Map<String, BTreeMap<String, SearchParamDef>>,
    unsupported: Map<String, Vec<String>>,
    compartment: Map<String, Vec<String>>,
}

/// Resource types that describe FHIR itself or terminology, not a person's record.
const DEFINITIONAL: &[&str] = &[
    "ActivityDefinition",
    "CapabilityStatement",
    "CodeSystem",
    "CompartmentDefinition",
    "ConceptMap",
    "EffectEvidenceSynthesis",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "GraphDefinition",
    "ImplementationGuide",
    "Library",
    "Measure",
    "MessageDefinition",
    "NamingSystem",
    "ObservationDefinition",
    "OperationDefinition",
    "PlanDefinition",
    "Questionnaire",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "RiskEvidenceSynthesis",
    "SearchParameter",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
];

/// A type's search parameters by name, each that is the exact union of others marked as
/// served by them. Indexing such a parameter would store the same values twice (a tenth of
/// an Observation-heavy record's index rows).
fn with_served_by(params: Vec<SearchParamDef>) -> BTreeMap<String, SearchParamDef> {
    let served: Vec<Vec<String>> = params
        .iter()
        .map(|p| {
            if p.paths.len() < 2 {
                return Vec::new();
            }
            let parts: Vec<&SearchParamDef> = params
                .iter()
                .filter(|q| {
                    q.name != p.name
                        && q.kind == p.kind
                        && q.paths.iter().all(|path| p.paths.contains(path))
                })
                .collect();
            let covered = p
                .paths
                .iter()
                .all(|path| parts.iter().any(|q| q.paths.contains(path)));
            if covered {
                parts.iter().map(|q| q.name.clone()).collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    params
        .into_iter()
        .zip(served)
        .map(|(mut p, served_by)| {
            p.served_by = served_by;
            (p.name.clone(), p)
        })
        .collect()
}

impl Definitions {
    /// The embedded R4 definitions, decoded once on first use.
    pub fn r4() -> &'static Definitions {
        static DEFS: OnceLock<Definitions> = OnceLock::new();
        DEFS.get_or_init(|| match Self::decode(R4_GZ) {
            Ok(d) => d,
            // The file is produced by our own script and checked by the tests below; a
            // broken build artefact is the one case where stopping is right.
            #[allow(clippy::panic)]
            Err(e) => panic!("embedded FHIR definitions are unreadable: {e}"),
        })
    }

    fn decode(gz: &[u8]) -> Result<Self, String> {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut json)
            .map_err(|e| e.to_string())?;
        let mut raw: Raw = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        for (name, t) in raw.types.iter_mut() {
            let mut children: Map<String, Vec<(String, String)>> = Map::default();
            for path in t.elements.keys() {
                if let Some((parent, child)) = path.rsplit_once('.') {
                    children
                        .entry(parent.to_owned())
                        .or_default()
                        .push((child.to_owned(), path.clone()));
                }
            }
            children.entry(name.clone()).or_default();
            t.children = children;
        }
        Ok(Definitions {
            resource_set: raw.resources.iter().cloned().collect(),
            resources: raw.resources,
            types: raw.types,
            valuesets: raw
                .valuesets
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect(),
            search: raw
                .search
                .into_iter()
                .map(|(k, v)| (k, with_served_by(v)))
                .collect(),
            unsupported: raw.unsupported,
            compartment: raw.compartment,
        })
    }

    /// Every concrete R4 resource type, sorted.
    pub fn resource_types(&self) -> &[String] {
        &self.resources
    }

    /// Whether `name` is a concrete R4 resource type.
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.resource_set.contains(name)
    }

    /// Whether a resource type is definitional (conformance, terminology, knowledge), not
    /// record data.
    pub fn is_definitional(&self, name: &str) -> bool {
        DEFINITIONAL.contains(&name)
    }

    /// The element at `path` (e.g. `Observation.code`) of `type_name`.
    pub fn element(&self, type_name: &str, path: &str) -> Option<&ElementDef> {
        self.types.get(type_name)?.elements.get(path)
    }

    /// Whether a type is primitive (`string`, `dateTime`, …).
    pub fn is_primitive(&self, type_name: &str) -> bool {
        self.types
            .get(type_name)
            .is_some_and(|t| t.kind == "primitive-type")
    }

    /// Whether a type is known and not abstract.
    pub fn is_concrete_type(&self, type_name: &str) -> bool {
        self.types.get(type_name).is_some_and(|t| !t.is_abstract)
    }

    /// The elements of `type_name` directly under `path`, as (name, definition).
    pub fn children<'a>(
        &'a self,
        type_name: &str,
        path: &str,
    ) -> impl Iterator<Item = (&'a str, &'a ElementDef)> + 'a {
        let t = self.types.get(type_name);
        t.and_then(|t| t.children.get(path))
            .into_iter()
            .flatten()
            .filter_map(move |(name, full)| Some((name.as_str(), t?.elements.get(full)?)))
    }

    /// The codes of a required value set, if Hale could expand it.
    pub fn value_set(&self, url: &str) -> Option<&Set<String>> {
        self.valuesets.get(url)
    }

    /// A search parameter of a resource type.
    pub fn search_param(&self, resource_type: &str, name: &str) -> Option<&SearchParamDef> {
        self.search.get(resource_type)?.get(name)
    }

    /// The parameters whose index rows hold `name`'s values: itself, or those it is the
    /// union of (see [`SearchParamDef::served_by`]).
    pub fn indexed_as<'a>(&'a self, resource_type: &str, name: &'a str) -> Vec<&'a str> {
        match self.search_param(resource_type, name) {
            Some(p) if !p.served_by.is_empty() => p.served_by.iter().map(String::as_str).collect(),
            _ => vec![name],
        }
    }

    /// All search parameters Hale supports for a resource type.
    pub fn search_params(&self, resource_type: &str) -> impl Iterator<Item = &SearchParamDef> {
        self.search
            .get(resource_type)
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// Whether `name` is an R4 search parameter of the type that Hale does not index
    /// (composite, special, or an expression beyond Hale's FHIRPath subset).
    pub fn is_unsupported_param(&self, resource_type: &str, name: &str) -> bool {
        self.unsupported
            .get(resource_type)
            .is_some_and(|v| v.iter().any(|n| n == name))
    }

    /// The search parameters that place a resource of this type in a Patient compartment
    /// (empty when the type is not a compartment member).
    pub fn compartment_params(&self, resource_type: &str) -> &[String] {
        self.compartment
            .get(resource_type)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_definitions_cover_all_r4_resource_types() {
        let d = Definitions::r4();
        assert_eq!(d.resource_types().len(), 146);
        assert!(d.is_resource_type("Observation"));
        assert!(!d.is_resource_type("DomainResource"));
        assert!(d.is_definitional("StructureDefinition"));
        assert!(!d.is_definitional("Condition"));
    }

    #[test]
    fn search_parameters_come_from_the_official_definitions() {
        let d = Definitions::r4();
        let p = d.search_param("Observation", "value-quantity").unwrap();
        assert_eq!(p.kind, SearchParamType::Quantity);
        let p = d.search_param("Observation", "patient").unwrap();
        assert_eq!(p.paths[0].ref_type.as_deref(), Some("Patient"));
        assert_eq!(
            d.compartment_params("Observation"),
            ["subject", "performer"]
        );
    }

    #[test]
    fn a_parameter_that_is_the_union_of_others_is_served_by_their_rows() {
        let d = Definitions::r4();
        let mut served: Vec<String> = d
            .resource_types()
            .iter()
            .flat_map(|t| {
                d.search_params(t)
                    .filter(|p| !p.served_by.is_empty())
                    .map(move |p| format!("{t}.{} = {}", p.name, p.served_by.join(" | ")))
            })
            .collect();
        served.sort();
        assert_eq!(
            served,
            [
                "Observation.combo-code = code | component-code",
                "Observation.combo-data-absent-reason = component-data-absent-reason | data-absent-reason",
                "Observation.combo-value-concept = component-value-concept | value-concept",
                "Observation.combo-value-quantity = component-value-quantity | value-quantity",
            ]
        );
        assert_eq!(
            d.indexed_as("Observation", "combo-code"),
            ["code", "component-code"]
        );
        assert_eq!(d.indexed_as("Observation", "code"), ["code"]);
        // `patient` is `subject` narrowed to Patients, not a union: it keeps its own rows.
        assert_eq!(d.indexed_as("Observation", "patient"), ["patient"]);
    }

    #[test]
    fn required_value_sets_are_expanded() {
        let vs = Definitions::r4()
            .value_set("http://hl7.org/fhir/ValueSet/observation-status")
            .unwrap();
        assert!(vs.contains("final"));
        assert!(!vs.contains("nearly"));
    }
}
