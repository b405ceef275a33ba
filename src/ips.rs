//! The emergency profile as an HL7 FHIR R4 International Patient Summary: a `document` Bundle
//! whose first entry is the Composition (LOINC 60591-5), then the Patient and the resources
//! the sections name. Built with serde_json: the few resources IPS needs do not call for a FHIR
//! library, and CI validates the output with one (tests/fhir/validate_ips.py).
//!
//! Required sections (allergies 48765-2, medications 10160-0, problems 11450-4) are always
//! present, with entries or an `emptyReason`; the others only when the profile has something
//! for them. Every `fullUrl` is a `urn:uuid:`. What the patient wrote is free text
//! (`code.text`): carnet does not guess codes.

use serde_json::{Value, json};

use crate::manifest::Patient;
use crate::profile::{self, Profile, Severity};

const LOINC: &str = "http://loinc.org";
const DATA_ABSENT: &str = "http://hl7.org/fhir/StructureDefinition/data-absent-reason";
/// ANS TRE_A03-ClasseDocument: the DMP document classes (`carnet categories`).
pub const TRE_A03: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument";
/// INS-NIR, the French national health identifier (NIR).
const INS_NIR: &str = "urn:oid:1.2.250.1.213.1.4.8";
/// The national identifier of health professionals (IdNatPS: "8" + RPPS).
const IDNAT_PS: &str = "urn:oid:1.2.250.1.71.4.2.1";

/// A document listed as a DocumentReference, its file written next to the JSON.
pub struct DocRef {
    pub title: String,
    /// DMP class code (`10`, `31` …) and label.
    pub class_code: &'static str,
    pub class_label: &'static str,
    pub date: jiff::civil::Date,
    pub added_at: jiff::Timestamp,
    pub media_type: String,
    pub size: u64,
    /// SHA-1 of the content, base64: FHIR's `Attachment.hash`.
    pub sha1_base64: String,
    /// The file's name relative to the JSON (percent-encoded here).
    pub file_name: String,
}

/// What the Bundle is built from.
pub struct Input<'a> {
    pub patient: &'a Patient,
    pub profile: &'a Profile,
    pub documents: &'a [DocRef],
    pub now: jiff::Timestamp,
}

/// A new random (v4) UUID, as `urn:uuid:…`.
pub fn urn_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn id_of(urn: &str) -> &str {
    urn.trim_start_matches("urn:uuid:")
}

fn loinc(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": LOINC, "code": code, "display": display}]})
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// FHIR narrative: a `<div>` of XHTML (escaped lines as a list, or one paragraph).
fn narrative(lines: &[String]) -> Value {
    let body = match lines {
        [] => "<p>Aucune information / No information</p>".to_string(),
        [one] => format!("<p>{}</p>", escape(one)),
        many => format!(
            "<ul>{}</ul>",
            many.iter()
                .map(|l| format!("<li>{}</li>", escape(l)))
                .collect::<String>()
        ),
    };
    json!({
        "status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{body}</div>")
    })
}

fn absent() -> Value {
    json!({"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]})
}

/// Percent-encodes a file name for a relative `url` (RFC 3986 unreserved characters kept).
pub fn url_path(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Builder {
    entries: Vec<Value>,
    patient_ref: String,
}

impl Builder {
    /// Adds `resource` with a new `urn:uuid:` (its `id` the same UUID); returns the urn.
    fn add(&mut self, mut resource: Value) -> String {
        let urn = urn_uuid();
        resource["id"] = json!(id_of(&urn));
        self.entries
            .push(json!({"fullUrl": urn.clone(), "resource": resource}));
        urn
    }
}

/// A section: its entries, or an `emptyReason` when required and empty; None for an optional
/// section with nothing in it.
fn section(
    title: &str,
    code: &str,
    display: &str,
    lines: Vec<String>,
    entries: Vec<String>,
    required: bool,
) -> Option<Value> {
    if lines.is_empty() && entries.is_empty() && !required {
        return None;
    }
    let mut s = json!({
        "title": title,
        "code": loinc(code, display),
        "text": narrative(&lines),
    });
    if entries.is_empty() && lines.is_empty() {
        s["emptyReason"] = json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
            "code": "unavailable",
            "display": "Unavailable"
        }]});
    } else if !entries.is_empty() {
        s["entry"] = Value::Array(
            entries
                .into_iter()
                .map(|r| json!({"reference": r}))
                .collect(),
        );
    }
    Some(s)
}

fn date_or_absent(v: &mut Value, field: &str, d: Option<&profile::PartialDate>) {
    match d {
        Some(d) => v[field] = json!(d.as_str()),
        None => v[format!("_{field}")] = absent(),
    }
}

/// Builds the IPS document Bundle.
pub fn bundle(input: &Input) -> Value {
    let p = input.profile;
    let now = input.now.to_string();
    let composition_urn = urn_uuid();
    let patient_urn = urn_uuid();
    let mut b = Builder {
        entries: Vec::new(),
        patient_ref: patient_urn.clone(),
    };
    let subject = || json!({"reference": patient_urn.clone()});

    // The médecin traitant, referenced by the Patient.
    let doctor_urn = p.doctor.as_ref().map(|d| {
        let mut pr = json!({"resourceType": "Practitioner", "name": [{"text": d.name}]});
        if let Some(t) = &d.phone {
            pr["telecom"] = json!([{"system": "phone", "value": t, "use": "work"}]);
        }
        if let Some(r) = &d.rpps {
            pr["identifier"] = json!([{"system": IDNAT_PS, "value": format!("8{r}")}]);
        }
        b.add(pr)
    });

    let mut allergies = (Vec::new(), Vec::new());
    for a in &p.allergies {
        let mut r = json!({
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": "active"}]},
            "code": {"text": a.substance},
            "patient": {"reference": b.patient_ref},
        });
        if let Some(s) = a.severity {
            r["criticality"] = json!(if s == Severity::Severe { "high" } else { "low" });
        }
        if let Some(re) = &a.reaction {
            let mut reaction = json!({"manifestation": [{"text": re}]});
            if let Some(s) = a.severity {
                reaction["severity"] = json!(s.as_str());
            }
            r["reaction"] = json!([reaction]);
        }
        allergies.1.push(b.add(r));
        let mut line = a.substance.clone();
        if let Some(re) = &a.reaction {
            line.push_str(&format!(" — {re}"));
        }
        if let Some(s) = a.severity {
            line.push_str(&format!(" ({})", s.as_str()));
        }
        allergies.0.push(line);
    }

    let mut meds = (Vec::new(), Vec::new());
    for m in &p.medications {
        let mut r = json!({
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {"text": m.name},
            "subject": subject(),
        });
        date_or_absent(&mut r, "effectiveDateTime", m.since.as_ref());
        if let Some(d) = &m.dose {
            r["dosage"] = json!([{"text": d}]);
        }
        meds.1.push(b.add(r));
        meds.0.push(match &m.dose {
            Some(d) => format!("{} {d}", m.name),
            None => m.name.clone(),
        });
    }

    let mut problems = (Vec::new(), Vec::new());
    for c in &p.conditions {
        let mut r = json!({
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "code": {"text": c.name},
            "subject": subject(),
        });
        if let Some(d) = &c.since {
            r["onsetDateTime"] = json!(d.as_str());
        }
        problems.1.push(b.add(r));
        problems.0.push(c.name.clone());
    }

    let mut vaccines = (Vec::new(), Vec::new());
    for i in &p.immunizations {
        let mut r = json!({
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"text": i.vaccine},
            "patient": subject(),
        });
        date_or_absent(&mut r, "occurrenceDateTime", i.date.as_ref());
        vaccines.1.push(b.add(r));
        vaccines.0.push(match &i.date {
            Some(d) => format!("{} ({d})", i.vaccine),
            None => i.vaccine.clone(),
        });
    }

    let mut devices = (Vec::new(), Vec::new());
    for d in &p.devices {
        let device = b.add(json!({
            "resourceType": "Device",
            "deviceName": [{"name": d.name, "type": "user-friendly-name"}],
            "patient": subject(),
        }));
        let mut r = json!({
            "resourceType": "DeviceUseStatement",
            "status": "active",
            "subject": subject(),
            "device": {"reference": device},
        });
        if let Some(x) = &d.since {
            r["timingDateTime"] = json!(x.as_str());
        }
        devices.1.push(b.add(r));
        devices.0.push(d.name.clone());
    }

    let mut results = (Vec::new(), Vec::new());
    if let Some(g) = &p.blood_group {
        let g = profile::blood_group(g).unwrap_or_else(|| g.clone());
        results.1.push(b.add(json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": "882-1",
                                 "display": "ABO and Rh group [Type] in Blood"}],
                     "text": "Groupe sanguin / blood group"},
            "subject": subject(),
            "valueCodeableConcept": {"text": g},
        })));
        results.0.push(format!("Groupe sanguin / blood group: {g}"));
    }

    let mut directives = Vec::new();
    if let Some(t) = &p.advance_directives {
        directives.push(t.trim().to_string());
    }
    if let Some(o) = p.organ_donation {
        directives.push(profile::organ_donation_text(o).to_string());
    }
    let notes: Vec<String> = p
        .notes
        .as_deref()
        .map(|n| n.lines().map(str::to_string).collect())
        .unwrap_or_default();

    let sections: Vec<Value> = [
        section(
            "Allergies et intolérances / Allergies and intolerances",
            "48765-2",
            "Allergies and adverse reactions Document",
            allergies.0,
            allergies.1,
            true,
        ),
        section(
            "Traitements / Medication summary",
            "10160-0",
            "History of Medication use Narrative",
            meds.0,
            meds.1,
            true,
        ),
        section(
            "Problèmes / Problem list",
            "11450-4",
            "Problem list - Reported",
            problems.0,
            problems.1,
            true,
        ),
        section(
            "Vaccinations / Immunizations",
            "11369-6",
            "History of Immunization Narrative",
            vaccines.0,
            vaccines.1,
            false,
        ),
        section(
            "Implants et dispositifs / Medical devices",
            "46264-8",
            "History of medical device use",
            devices.0,
            devices.1,
            false,
        ),
        section(
            "Résultats / Results",
            "30954-2",
            "Relevant diagnostic tests/laboratory data Narrative",
            results.0,
            results.1,
            false,
        ),
        section(
            "Directives anticipées / Advance directives",
            "42348-3",
            "Advance healthcare directives",
            directives,
            Vec::new(),
            false,
        ),
        section(
            "Notes du patient / Patient's notes",
            "104605-1",
            "Alert",
            notes,
            Vec::new(),
            false,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();

    let mut patient = json!({"resourceType": "Patient", "id": id_of(&patient_urn)});
    patient["name"] = match &input.patient.name {
        Some(n) => json!([{"text": n}]),
        None => json!([{"text": "Inconnu / Unknown"}]),
    };
    if let Some(nir) = &input.patient.nir {
        patient["identifier"] = json!([{"system": INS_NIR, "value": nir}]);
    }
    patient["gender"] = json!(p.sex.map_or("unknown", profile::Sex::as_str));
    date_or_absent(&mut patient, "birthDate", p.birth_date.as_ref());
    if let Some(l) = &p.language {
        patient["communication"] = json!([{
            "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": l}], "text": l},
            "preferred": true}]);
    }
    if !p.emergency_contacts.is_empty() {
        patient["contact"] = Value::Array(
            p.emergency_contacts
                .iter()
                .map(|c| {
                    let mut v = json!({"name": {"text": c.name}});
                    if let Some(r) = &c.relation {
                        v["relationship"] = json!([{"text": r}]);
                    }
                    if let Some(t) = &c.phone {
                        v["telecom"] = json!([{"system": "phone", "value": t}]);
                    }
                    v
                })
                .collect(),
        );
    }
    if let Some(d) = &doctor_urn {
        patient["generalPractitioner"] = json!([{"reference": d}]);
    }

    // DocumentReferences are entries of the Bundle beside the summary, not of its sections.
    for d in input.documents {
        b.add(json!({
            "resourceType": "DocumentReference",
            "status": "current",
            "category": [{"coding": [{"system": TRE_A03, "code": d.class_code,
                                      "display": d.class_label}]}],
            "subject": subject(),
            "date": d.added_at.to_string(),
            "description": d.title,
            "content": [{"attachment": {
                "contentType": d.media_type,
                "url": url_path(&d.file_name),
                "size": d.size,
                "hash": d.sha1_base64,
                "title": d.title,
                "creation": d.date.to_string(),
            }}],
        }));
    }

    let composition = json!({
        "resourceType": "Composition",
        "id": id_of(&composition_urn),
        "status": "final",
        "type": loinc("60591-5", "Patient summary Document"),
        "subject": subject(),
        "date": now,
        "author": [subject()],
        "title": format!(
            "Résumé patient / Patient summary{}",
            input.patient.name.as_deref().map(|n| format!(" — {n}")).unwrap_or_default()
        ),
        "section": sections,
    });
    let mut entries = vec![
        json!({"fullUrl": composition_urn, "resource": composition}),
        json!({"fullUrl": patient_urn, "resource": patient}),
    ];
    entries.extend(b.entries);
    json!({
        "resourceType": "Bundle",
        "id": id_of(&urn_uuid()),
        "language": "fr",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": urn_uuid()},
        "type": "document",
        "timestamp": now,
        "entry": entries,
    })
}

/// The DMP class (code, label) of a category slug.
pub fn class_of(category: &str) -> (&'static str, &'static str) {
    crate::category::ALL
        .iter()
        .find(|c| c.slug == category)
        .map_or(("95", "Document de gestion"), |c| (c.dmp_class, c.label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_profile_gives_the_three_required_sections_with_an_empty_reason() {
        let b = bundle(&Input {
            patient: &Patient::default(),
            profile: &Profile::default(),
            documents: &[],
            now: jiff::Timestamp::UNIX_EPOCH,
        });
        assert_eq!(b["type"], "document");
        assert_eq!(b["entry"][0]["resource"]["resourceType"], "Composition");
        let sections = b["entry"][0]["resource"]["section"].as_array().unwrap();
        assert_eq!(sections.len(), 3);
        assert!(sections.iter().all(|s| s.get("emptyReason").is_some()));
        assert!(
            b["entry"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"))
        );
    }

    #[test]
    fn file_names_are_percent_encoded() {
        assert_eq!(
            url_path("2026-01-02 Radio é.png"),
            "2026-01-02%20Radio%20%C3%A9.png"
        );
    }
}
