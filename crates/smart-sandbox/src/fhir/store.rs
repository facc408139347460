//! The versioned, in-memory resource store.
//!
//! Every resource keeps all its versions (FHIR `versioned` with
//! `readHistory`), a deletion is a version without a body, and each version
//! carries its search [`Index`]. Tables keep insertion order, which is the
//! default order of search results, so results are stable and reproducible.
//! A per-patient list of slots makes compartment searches (the common case
//! with `patient/` scopes) cheap. The store is `Clone` so a transaction can
//! run against a copy and be committed by swapping it in (all or nothing).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::fhir::index::{Index, RESOURCE_TYPES, type_index};
use crate::synth::{self, Synth};
use crate::time::{DAY_MS, format_instant};

/// A stored resource body.
#[derive(Debug)]
pub(crate) enum Body {
    /// A generated resource, rendered on demand.
    Synth(Synth),
    /// A client-written resource, with `id` and `meta` already set.
    Json(Value),
}

/// How a version came to be, for `Bundle.entry.request` in histories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Generated at start, or created with POST.
    Create,
    /// Written with PUT.
    Update,
    Delete,
}

/// One version of one resource.
#[derive(Debug)]
pub(crate) struct Version {
    pub(crate) version: u32,
    /// Unix milliseconds.
    pub(crate) last_updated: i64,
    /// `None` for a deletion.
    pub(crate) body: Option<Body>,
    pub(crate) index: Index,
    pub(crate) origin: Origin,
}

impl Version {
    /// `meta.versionId` and `meta.lastUpdated`.
    pub(crate) fn meta(&self) -> Value {
        json!({
            "versionId": self.version.to_string(),
            "lastUpdated": format_instant(self.last_updated)
        })
    }

    /// The resource JSON, `None` for a deletion.
    pub(crate) fn resource(&self) -> Option<Value> {
        match self.body.as_ref()? {
            Body::Synth(s) => Some(s.render(self.meta())),
            Body::Json(v) => Some(v.clone()),
        }
    }

    /// The resource as JSON text (the fast path for responses), `None` for
    /// a deletion.
    pub(crate) fn resource_text(&self) -> Option<String> {
        match self.body.as_ref()? {
            Body::Synth(s) => Some(s.render_text(&self.meta().to_string())),
            Body::Json(v) => Some(v.to_string()),
        }
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.body.is_none()
    }
}

#[derive(Debug, Clone)]
struct Slot {
    id: String,
    versions: Vec<Arc<Version>>,
}

#[derive(Debug, Clone, Default)]
struct Table {
    slots: Vec<Slot>,
    by_id: HashMap<String, usize>,
    /// Slots (ascending) whose latest version is in a patient's
    /// compartment; deleted resources may linger and are skipped on use.
    by_patient: HashMap<String, Vec<usize>>,
}

/// A live (not deleted) resource: its id, its slot (insertion order) and its
/// current version.
#[derive(Debug, Clone)]
pub(crate) struct Live<'a> {
    pub(crate) id: &'a str,
    pub(crate) slot: usize,
    pub(crate) version: &'a Arc<Version>,
}

/// All resources of all supported types.
#[derive(Debug, Clone)]
pub(crate) struct ResourceStore {
    tables: Vec<Table>,
    next_id: u64,
    /// The key that signs `_page` tokens: random per sandbox, so tokens
    /// cannot be forged or carried to another sandbox.
    page_key: PageKey,
}

/// The `_page` signing key; its `Debug` does not show it.
#[derive(Clone)]
struct PageKey([u8; 32]);

impl std::fmt::Debug for PageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageKey(redacted)")
    }
}

impl ResourceStore {
    fn empty() -> Self {
        let mut page_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut page_key);
        ResourceStore {
            tables: vec![Table::default(); RESOURCE_TYPES.len()],
            next_id: 0,
            page_key: PageKey(page_key),
        }
    }

    /// The key that signs `_page` tokens.
    pub(crate) fn page_key(&self) -> &[u8; 32] {
        &self.page_key.0
    }

    /// The seeded data set: `patient_count` patients whose history ends
    /// before `as_of_day` (days since 1970-01-01), and the practitioners.
    pub(crate) fn generate(seed: u64, patient_count: usize, as_of_day: i64) -> Self {
        let mut store = ResourceStore::empty();
        let stamp = as_of_day * DAY_MS;
        let add = |store: &mut ResourceStore, s: Synth| {
            let index = s.index();
            let id = s.id();
            store.insert(
                s.resource_type(),
                id,
                Body::Synth(s),
                index,
                stamp,
                Origin::Create,
            );
        };
        for s in synth::practitioners() {
            add(&mut store, s);
        }
        for n in 1..=patient_count as u32 {
            let p = synth::demographics(seed, n);
            let record = synth::patient_record(seed, &p, as_of_day);
            add(&mut store, Synth::Patient(p));
            for s in record
                .encounters
                .into_iter()
                .chain(record.observations)
                .chain(record.conditions)
                .chain(record.medications)
                .chain(record.allergies)
            {
                add(&mut store, s);
            }
        }
        store
    }

    fn table(&self, resource_type: &str) -> Option<&Table> {
        self.tables.get(type_index(resource_type)?)
    }

    /// All versions of a resource, oldest first.
    pub(crate) fn versions(&self, resource_type: &str, id: &str) -> Option<&[Arc<Version>]> {
        let table = self.table(resource_type)?;
        let slot = *table.by_id.get(id)?;
        table.slots.get(slot).map(|s| s.versions.as_slice())
    }

    /// The latest version (possibly a deletion).
    pub(crate) fn current(&self, resource_type: &str, id: &str) -> Option<&Arc<Version>> {
        self.versions(resource_type, id)?.last()
    }

    /// The latest version if the resource is not deleted.
    pub(crate) fn live(&self, resource_type: &str, id: &str) -> Option<&Arc<Version>> {
        self.current(resource_type, id).filter(|v| !v.is_deleted())
    }

    /// The latest version that has a body (for deleted resources, the one
    /// before the deletion).
    pub(crate) fn last_with_body(&self, resource_type: &str, id: &str) -> Option<&Arc<Version>> {
        self.versions(resource_type, id)?
            .iter()
            .rev()
            .find(|v| !v.is_deleted())
    }

    /// Every live resource of a type, in insertion order.
    pub(crate) fn all_live<'a>(&'a self, resource_type: &str) -> Vec<Live<'a>> {
        let Some(table) = self.table(resource_type) else {
            return Vec::new();
        };
        table
            .slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| {
                let version = s.versions.last().filter(|v| !v.is_deleted())?;
                Some(Live {
                    id: &s.id,
                    slot,
                    version,
                })
            })
            .collect()
    }

    /// The live resources of a type in one patient's compartment, in
    /// insertion order.
    pub(crate) fn compartment_live<'a>(
        &'a self,
        resource_type: &str,
        patient: &str,
    ) -> Vec<Live<'a>> {
        let Some(table) = self.table(resource_type) else {
            return Vec::new();
        };
        let Some(slots) = table.by_patient.get(patient) else {
            return Vec::new();
        };
        slots
            .iter()
            .filter_map(|&slot| {
                let s = table.slots.get(slot)?;
                let version = s.versions.last().filter(|v| !v.is_deleted())?;
                (version.index.patient.as_deref() == Some(patient)).then_some(Live {
                    id: &s.id,
                    slot,
                    version,
                })
            })
            .collect()
    }

    /// A fresh server-assigned id for a new resource of the type.
    pub(crate) fn new_id(&mut self, resource_type: &str) -> String {
        loop {
            self.next_id += 1;
            // Short, opaque-looking, and never the shape of a generated id.
            let id = format!(
                "s{:x}{:04x}",
                self.next_id,
                crate::rng::mix(self.next_id) & 0xffff
            );
            if self.current(resource_type, &id).is_none() {
                return id;
            }
        }
    }

    /// Appends a version to a resource (creating the resource if needed) and
    /// returns it. `body` `None` records a deletion.
    pub(crate) fn write(
        &mut self,
        resource_type: &str,
        id: &str,
        body: Option<Value>,
        index: Index,
        now: i64,
        origin: Origin,
    ) -> Arc<Version> {
        let version = next_version(self.current(resource_type, id), body.is_some());
        let body = body.map(|mut v| {
            if let Some(obj) = v.as_object_mut() {
                obj.insert("id".into(), Value::String(id.to_owned()));
                let mut meta = match obj.remove("meta") {
                    Some(Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                };
                meta.insert("versionId".into(), Value::String(version.to_string()));
                meta.insert("lastUpdated".into(), Value::String(format_instant(now)));
                // Re-insert `id` and `meta` first, where readers expect them.
                let rest: Vec<(String, Value)> = std::mem::take(obj).into_iter().collect();
                for (k, val) in rest {
                    let is_id = k == "id";
                    obj.insert(k, val);
                    if is_id {
                        obj.insert("meta".into(), Value::Object(meta.clone()));
                    }
                }
            }
            Body::Json(v)
        });
        self.insert(
            resource_type,
            id.to_owned(),
            body.map_or(BodyOrDeleted::Deleted, BodyOrDeleted::Body),
            index,
            now,
            origin,
        )
    }

    fn insert(
        &mut self,
        resource_type: &str,
        id: String,
        body: impl Into<BodyOrDeleted>,
        index: Index,
        now: i64,
        origin: Origin,
    ) -> Arc<Version> {
        let Some(t) = type_index(resource_type) else {
            // Callers only pass supported types; keep the store unchanged.
            return Arc::new(Version {
                version: 0,
                last_updated: now,
                body: None,
                index,
                origin,
            });
        };
        let table = &mut self.tables[t];
        let slot = match table.by_id.get(&id) {
            Some(&s) => s,
            None => {
                table.slots.push(Slot {
                    id: id.clone(),
                    versions: Vec::new(),
                });
                let s = table.slots.len() - 1;
                table.by_id.insert(id, s);
                s
            }
        };
        let previous_patient = table.slots[slot]
            .versions
            .last()
            .and_then(|v| v.index.patient.clone());
        let body = match body.into() {
            BodyOrDeleted::Body(b) => Some(b),
            BodyOrDeleted::Deleted => None,
        };
        let number = next_version(table.slots[slot].versions.last(), body.is_some());
        if number == 1 {
            // A re-creation after a deletion: a new lifetime. The earlier
            // lifetime's versions are dropped, so neither its content nor its
            // length is visible through this id (see `next_version`).
            table.slots[slot].versions.clear();
        }
        let version = Arc::new(Version {
            version: number,
            last_updated: now,
            // A deletion keeps no index: it matches no search.
            index: if body.is_some() {
                index
            } else {
                Index::default()
            },
            body,
            origin,
        });
        table.slots[slot].versions.push(version.clone());
        let new_patient = version.index.patient.clone();
        if previous_patient != new_patient {
            if let Some(old) = previous_patient
                && let Some(list) = table.by_patient.get_mut(&old)
            {
                list.retain(|&s| s != slot);
            }
            if let Some(new) = new_patient {
                let list = table.by_patient.entry(new).or_default();
                if let Err(pos) = list.binary_search(&slot) {
                    list.insert(pos, slot);
                }
            }
        }
        version
    }

    /// Number of live resources of a type (for tests and the index page).
    #[cfg(test)]
    pub(crate) fn count(&self, resource_type: &str) -> usize {
        self.all_live(resource_type).len()
    }
}

/// A body to store, or a deletion marker.
enum BodyOrDeleted {
    Body(Body),
    Deleted,
}

impl From<Body> for BodyOrDeleted {
    fn from(b: Body) -> Self {
        BodyOrDeleted::Body(b)
    }
}

/// The version number a write gets: one more than the current version, or 1
/// for a new resource and for a re-creation of a deleted one.
///
/// Why a re-creation restarts at 1: continuing the count would tell the
/// creator (through `ETag` and `meta.versionId`) how many versions the id had
/// before, although the earlier lifetime may belong to a patient it cannot
/// read. A new logical lifetime is the simplest rule that leaks nothing to
/// anyone; the price is that the earlier lifetime's versions are no longer
/// served (vread and `_history` show the new lifetime only, to every caller).
fn next_version(current: Option<&Arc<Version>>, has_body: bool) -> u32 {
    match current {
        None => 1,
        Some(v) if v.is_deleted() && has_body => 1,
        Some(v) => v.version.saturating_add(1),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fhir::index::extract;

    #[test]
    fn generated_store_has_the_promised_volume() {
        let store = ResourceStore::generate(1, 300, 20_000);
        assert_eq!(store.count("Patient"), 300);
        assert_eq!(store.count("Practitioner"), 10);
        let obs = store.count("Observation");
        assert!(obs > 5_000, "{obs}");
        assert!(store.count("Encounter") >= 300);
        assert!(store.count("Condition") > 0);
        assert!(store.count("MedicationRequest") > 0);
        assert!(store.count("AllergyIntolerance") > 0);
        assert!(store.compartment_live("Observation", "pat-1").len() >= 120);
    }

    #[test]
    fn versions_deletions_and_compartments() {
        let mut store = ResourceStore::generate(1, 5, 20_000);
        let before = store.compartment_live("Observation", "pat-2").len();
        let body = json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/pat-2"}
        });
        let id = store.new_id("Observation");
        let ix = extract("Observation", &body, "http://x/fhir");
        let v1 = store.write(
            "Observation",
            &id,
            Some(body.clone()),
            ix,
            1000,
            Origin::Create,
        );
        assert_eq!(v1.version, 1);
        let json = v1.resource().unwrap();
        assert_eq!(json["id"], id.as_str());
        assert_eq!(json["meta"]["versionId"], "1");
        assert_eq!(
            store.compartment_live("Observation", "pat-2").len(),
            before + 1
        );

        // Moving it to another patient moves it between compartments.
        let mut moved = body;
        moved["subject"]["reference"] = json!("Patient/pat-3");
        let ix = extract("Observation", &moved, "http://x/fhir");
        let v2 = store.write("Observation", &id, Some(moved), ix, 2000, Origin::Update);
        assert_eq!(v2.version, 2);
        assert_eq!(store.compartment_live("Observation", "pat-2").len(), before);
        assert!(
            store
                .compartment_live("Observation", "pat-3")
                .iter()
                .any(|l| l.id == id)
        );

        let v3 = store.write(
            "Observation",
            &id,
            None,
            Index::default(),
            3000,
            Origin::Delete,
        );
        assert!(v3.is_deleted());
        assert!(store.live("Observation", &id).is_none());
        assert_eq!(store.last_with_body("Observation", &id).unwrap().version, 2);
        assert_eq!(store.versions("Observation", &id).unwrap().len(), 3);
        assert!(
            !store
                .compartment_live("Observation", "pat-3")
                .iter()
                .any(|l| l.id == id)
        );

        // Re-creating the deleted id starts a new lifetime at version 1: the
        // three earlier versions are gone, from the count and from history.
        let again = json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/pat-4"}
        });
        let ix = extract("Observation", &again, "http://x/fhir");
        let v1 = store.write("Observation", &id, Some(again), ix, 4000, Origin::Update);
        assert_eq!(v1.version, 1);
        assert_eq!(v1.resource().unwrap()["meta"]["versionId"], "1");
        let versions = store.versions("Observation", &id).unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0].version, 1);
        assert!(
            store
                .compartment_live("Observation", "pat-4")
                .iter()
                .any(|l| l.id == id)
        );
        // A deletion of the new lifetime continues its count.
        let d = store.write(
            "Observation",
            &id,
            None,
            Index::default(),
            5000,
            Origin::Delete,
        );
        assert_eq!(d.version, 2);
    }
}
