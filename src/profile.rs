//! The emergency profile: what an emergency team needs in the first minutes (allergies,
//! treatments, conditions, blood group, devices, directives, whom to call), as the patient
//! writes it in TOML (`carnet profile import|edit|export`, schema in FORMAT.md).
//!
//! In the vault it is never in clear: each version is a write-once object sealed to the vault's
//! recipients (`objects/xx/ID.age`, JSON), and the root lists every version with the size and
//! BLAKE3 of its object, oldest first, the last one current. So the profile is authenticated
//! like the shards (head → root → object hash), and its history is kept like a document's.

use std::fmt;

use anyhow::Context;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::crypto;
use crate::error::Error;
use crate::index::FileEntry;
use crate::keys::Unlocked;
use crate::layout::Store;

/// A profile file is a page of text; anything larger is not one (or is hostile).
pub const MAX_TOML: u64 = 256 << 10;
/// Bounds on a sealed version (a hostile root cannot make carnet read more).
const MAX_SEALED: u64 = 1 << 20;
/// Entries per list and characters per text field: a profile is read in an emergency.
const MAX_ITEMS: usize = 100;
const MAX_TEXT: usize = 4000;
const MAX_LINE: usize = 200;

/// The emergency profile. Every field is optional; lists are empty when absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<PartialDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    /// ABO and Rh: `A+`, `O-`, `AB+` …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blood_group: Option<String>,
    /// The language to speak to the patient (BCP 47: `fr`, `en`, `ar`, `fr-BE` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organ_donation: Option<OrganDonation>,
    /// Advance directives ("directives anticipées"), or where they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance_directives: Option<String>,
    /// Free notes for the emergency team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allergies: Vec<Allergy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub medications: Vec<Medication>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub immunizations: Vec<Immunization>,
    /// Implants and medical devices (pacemaker, prosthesis, insulin pump …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emergency_contacts: Vec<Contact>,
    /// The médecin traitant (the patient's regular doctor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor: Option<Doctor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allergy {
    pub substance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Mild,
    Moderate,
    Severe,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Mild => "mild",
            Severity::Moderate => "moderate",
            Severity::Severe => "severe",
        }
    }

    /// As shown to a French-speaking team first.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Mild => "légère / mild",
            Severity::Moderate => "modérée / moderate",
            Severity::Severe => "SÉVÈRE / SEVERE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
}

/// The patient's choice on organ donation (in France consent is presumed; a refusal is
/// registered in the Registre national des refus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrganDonation {
    Yes,
    No,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Medication {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<PartialDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<PartialDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Immunization {
    pub vaccine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<PartialDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<PartialDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Doctor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpps: Option<String>,
}

/// A date as people know it: a year (`2019`), a month (`2019-03`) or a day (`2019-03-14`),
/// which is also what FHIR's `dateTime` accepts. Written quoted or as a TOML date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialDate(String);

impl PartialDate {
    pub fn parse(s: &str) -> Result<PartialDate, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not a date (write 2019, 2019-03 or 2019-03-14)");
        let parts: Vec<&str> = s.split('-').collect();
        let num = |p: &str, len: usize| -> Option<i16> {
            (p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        };
        let year = parts.first().and_then(|p| num(p, 4)).ok_or_else(bad)?;
        if !(1900..=2200).contains(&year) {
            return Err(bad());
        }
        match parts.len() {
            1 => {}
            2 => {
                let m = num(parts[1], 2).ok_or_else(bad)?;
                if !(1..=12).contains(&m) {
                    return Err(bad());
                }
            }
            3 => {
                s.parse::<jiff::civil::Date>().map_err(|_| bad())?;
            }
            _ => return Err(bad()),
        }
        Ok(PartialDate(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for PartialDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PartialDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PartialDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date such as 2019, 2019-03 or 2019-03-14")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PartialDate, E> {
                PartialDate::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PartialDate, E> {
                // `since = 2019`: a bare year is a TOML integer.
                PartialDate::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PartialDate, E> {
                PartialDate::parse(&v.to_string()).map_err(E::custom)
            }
            // A bare TOML date (`date = 2021-10-04`) reaches serde as toml's datetime, a map
            // of one private key to its text.
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PartialDate, A::Error> {
                let Some((_, text)) = map.next_entry::<String, String>()? else {
                    return Err(serde::de::Error::custom("an empty date"));
                };
                PartialDate::parse(&text).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Why a profile file was refused: with its line when the TOML parser knows it.
fn toml_error(source: &str, text: &str, e: &toml::de::Error) -> Error {
    let at = e
        .span()
        .map(|s| {
            let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
            format!(", line {line}")
        })
        .unwrap_or_default();
    Error::input(
        format!(
            "{source}{at}: {}",
            e.message().trim_end().replace('\n', "; ")
        ),
        "fix that line (the fields are described in FORMAT.md, \"The emergency profile\"; see examples/profile.toml)",
    )
}

impl Profile {
    /// Parses and checks a profile written in TOML; `source` names it in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Profile, Error> {
        if text.len() as u64 > MAX_TOML {
            return Err(Error::input(
                format!(
                    "{source} is larger than {}",
                    crate::text::human_size(MAX_TOML)
                ),
                "an emergency profile is a page of text: keep it short",
            ));
        }
        let p: Profile = toml::from_str(text).map_err(|e| toml_error(source, text, &e))?;
        p.check().map_err(|m| {
            Error::input(
                format!("{source}: {m}"),
                "fix it (see FORMAT.md, \"The emergency profile\", and examples/profile.toml)",
            )
        })?;
        Ok(p)
    }

    /// The profile as TOML, with a header saying what it is.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let body = toml::to_string_pretty(self).context("cannot write the profile as TOML")?;
        Ok(format!(
            "# carnet emergency profile (see FORMAT.md, \"The emergency profile\").\n\
             # Every field is optional. Import it with `carnet profile import FILE`.\n\n{body}"
        ))
    }

    /// Nothing filled in.
    pub fn is_empty(&self) -> bool {
        *self == Profile::default()
    }

    /// Bounds and shapes the TOML grammar cannot say.
    pub fn check(&self) -> Result<(), String> {
        let line = |what: &str, s: &str| -> Result<(), String> {
            if s.trim().is_empty() {
                return Err(format!("{what} is empty"));
            }
            if s.chars().count() > MAX_LINE || s.contains(['\n', '\r']) {
                return Err(format!(
                    "{what} must be one line of at most {MAX_LINE} characters"
                ));
            }
            if s.chars().any(crate::text::is_unsafe) {
                return Err(format!("{what} holds control or invisible characters"));
            }
            Ok(())
        };
        let text = |what: &str, s: &str| -> Result<(), String> {
            if s.chars().count() > MAX_TEXT {
                return Err(format!("{what} is longer than {MAX_TEXT} characters"));
            }
            if s.chars().any(|c| c != '\n' && crate::text::is_unsafe(c)) {
                return Err(format!("{what} holds control or invisible characters"));
            }
            Ok(())
        };
        let opt = |what: &str, s: &Option<String>| s.as_deref().map_or(Ok(()), |s| line(what, s));
        let count = |what: &str, n: usize| {
            if n > MAX_ITEMS {
                Err(format!("more than {MAX_ITEMS} {what}"))
            } else {
                Ok(())
            }
        };
        if let Some(b) = &self.blood_group
            && blood_group(b).is_none()
        {
            return Err(format!(
                "blood_group {b:?} is not one of A+, A-, B+, B-, AB+, AB-, O+, O-"
            ));
        }
        if let Some(l) = &self.language {
            let ok = (2..=35).contains(&l.len())
                && l.split('-').all(|p| {
                    !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric())
                });
            if !ok {
                return Err(format!(
                    "language {l:?} is not a language tag such as fr, en or fr-BE"
                ));
            }
        }
        if let Some(t) = &self.advance_directives {
            text("advance_directives", t)?;
        }
        if let Some(t) = &self.notes {
            text("notes", t)?;
        }
        count("allergies", self.allergies.len())?;
        for a in &self.allergies {
            line("an allergy's substance", &a.substance)?;
            opt("an allergy's reaction", &a.reaction)?;
        }
        count("medications", self.medications.len())?;
        for m in &self.medications {
            line("a medication's name", &m.name)?;
            opt("a medication's dose", &m.dose)?;
        }
        count("conditions", self.conditions.len())?;
        for c in &self.conditions {
            line("a condition's name", &c.name)?;
        }
        count("immunizations", self.immunizations.len())?;
        for i in &self.immunizations {
            line("an immunization's vaccine", &i.vaccine)?;
        }
        count("devices", self.devices.len())?;
        for d in &self.devices {
            line("a device's name", &d.name)?;
        }
        count("emergency contacts", self.emergency_contacts.len())?;
        for c in &self.emergency_contacts {
            line("a contact's name", &c.name)?;
            opt("a contact's relation", &c.relation)?;
            opt("a contact's phone", &c.phone)?;
        }
        if let Some(d) = &self.doctor {
            line("the doctor's name", &d.name)?;
            opt("the doctor's phone", &d.phone)?;
            if let Some(r) = &d.rpps {
                crate::pro::check_rpps(r).map_err(|e| format!("the doctor's rpps: {e}"))?;
            }
        }
        Ok(())
    }
}

/// The blood group in its usual spelling (`AB+`), or None when it is not one.
pub fn blood_group(s: &str) -> Option<String> {
    let t: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
        .replace("POS", "+")
        .replace("NEG", "-")
        .replace('0', "O");
    matches!(
        t.as_str(),
        "A+" | "A-" | "B+" | "B-" | "AB+" | "AB-" | "O+" | "O-"
    )
    .then_some(t)
}

// ---------------------------------------------------------------------------------------------
// Readable text

/// What the card and the QR code may show in clear: the patient chooses among these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Essential {
    Allergies,
    BloodGroup,
    Medications,
    Conditions,
    Devices,
    Contacts,
    Doctor,
    Directives,
}

/// The chosen essentials, one line each (only those the profile has), for the card and QR.
pub fn essentials(p: &Profile, chosen: &[Essential]) -> Vec<String> {
    let mut out = Vec::new();
    let join = |v: Vec<String>| v.join(", ");
    for e in chosen {
        match e {
            Essential::Allergies if !p.allergies.is_empty() => out.push(format!(
                "Allergies: {}",
                join(p.allergies.iter().map(allergy_short).collect())
            )),
            Essential::BloodGroup => {
                if let Some(b) = &p.blood_group {
                    out.push(format!(
                        "Groupe sanguin / blood group: {}",
                        blood_group(b).unwrap_or_else(|| b.clone())
                    ));
                }
            }
            Essential::Medications if !p.medications.is_empty() => out.push(format!(
                "Traitements / medications: {}",
                join(p.medications.iter().map(medication_short).collect())
            )),
            Essential::Conditions if !p.conditions.is_empty() => out.push(format!(
                "Antécédents / conditions: {}",
                join(p.conditions.iter().map(|c| c.name.clone()).collect())
            )),
            Essential::Devices if !p.devices.is_empty() => out.push(format!(
                "Dispositifs / devices: {}",
                join(p.devices.iter().map(|d| d.name.clone()).collect())
            )),
            Essential::Contacts => {
                for c in &p.emergency_contacts {
                    out.push(format!("Contact: {}", contact_short(c)));
                }
            }
            Essential::Doctor => {
                if let Some(d) = &p.doctor {
                    out.push(format!(
                        "Médecin traitant: {}{}",
                        d.name,
                        d.phone
                            .as_deref()
                            .map(|t| format!(" {t}"))
                            .unwrap_or_default()
                    ));
                }
            }
            Essential::Directives if p.advance_directives.is_some() => {
                out.push("Directives anticipées: oui / advance directives: yes".into());
            }
            _ => {}
        }
    }
    out
}

fn allergy_short(a: &Allergy) -> String {
    let mut s = a.substance.clone();
    let mut more: Vec<&str> = Vec::new();
    if let Some(r) = &a.reaction {
        more.push(r);
    }
    if a.severity == Some(Severity::Severe) {
        more.push("SÉVÈRE");
    }
    if !more.is_empty() {
        s.push_str(&format!(" ({})", more.join(", ")));
    }
    s
}

fn medication_short(m: &Medication) -> String {
    match &m.dose {
        Some(d) => format!("{} {d}", m.name),
        None => m.name.clone(),
    }
}

fn contact_short(c: &Contact) -> String {
    let mut s = c.name.clone();
    if let Some(r) = &c.relation {
        s.push_str(&format!(" ({r})"));
    }
    if let Some(t) = &c.phone {
        s.push_str(&format!(" {t}"));
    }
    s
}

/// The readable summary that travels beside the IPS (plain UTF-8 text, French then English
/// headings): what a doctor without any FHIR tool reads first.
pub fn summary_text(
    name: Option<&str>,
    p: &Profile,
    version: Option<u32>,
    at: jiff::Timestamp,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "RÉSUMÉ D'URGENCE / EMERGENCY SUMMARY");
    let _ = writeln!(s, "====================================\n");
    let _ = writeln!(s, "Patient : {}", name.unwrap_or("(sans nom / unnamed)"));
    if let Some(b) = &p.birth_date {
        let _ = writeln!(s, "Né(e) le / born : {b}");
    }
    if let Some(x) = p.sex {
        let _ = writeln!(s, "Sexe / sex : {}", x.as_str());
    }
    if let Some(l) = &p.language {
        let _ = writeln!(s, "Langue / language : {l}");
    }
    let _ = writeln!(
        s,
        "Établi par le patient le / written by the patient on : {}{}\n",
        crate::dates::local_day(at),
        version
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default()
    );
    let section = |s: &mut String, title: &str, lines: Vec<String>, none: &str| {
        let _ = writeln!(s, "{title}");
        if lines.is_empty() {
            let _ = writeln!(s, "  {none}");
        }
        for l in lines {
            let _ = writeln!(s, "  - {l}");
        }
        let _ = writeln!(s);
    };
    let unknown = "non renseigné / not given";
    section(
        &mut s,
        "ALLERGIES",
        p.allergies
            .iter()
            .map(|a| {
                let mut l = a.substance.clone();
                if let Some(r) = &a.reaction {
                    l.push_str(&format!(" — {r}"));
                }
                if let Some(v) = a.severity {
                    l.push_str(&format!(" [{}]", v.label()));
                }
                l
            })
            .collect(),
        unknown,
    );
    section(
        &mut s,
        "TRAITEMENTS / MEDICATIONS",
        p.medications
            .iter()
            .map(|m| {
                let mut l = medication_short(m);
                if let Some(d) = &m.since {
                    l.push_str(&format!(" (depuis / since {d})"));
                }
                l
            })
            .collect(),
        unknown,
    );
    section(
        &mut s,
        "ANTÉCÉDENTS / PROBLEMS",
        p.conditions
            .iter()
            .map(|c| match &c.since {
                Some(d) => format!("{} (depuis / since {d})", c.name),
                None => c.name.clone(),
            })
            .collect(),
        unknown,
    );
    if let Some(b) = &p.blood_group {
        section(
            &mut s,
            "GROUPE SANGUIN / BLOOD GROUP",
            vec![blood_group(b).unwrap_or_else(|| b.clone())],
            unknown,
        );
    }
    if !p.immunizations.is_empty() {
        section(
            &mut s,
            "VACCINATIONS / IMMUNIZATIONS",
            p.immunizations
                .iter()
                .map(|i| match &i.date {
                    Some(d) => format!("{} ({d})", i.vaccine),
                    None => i.vaccine.clone(),
                })
                .collect(),
            unknown,
        );
    }
    if !p.devices.is_empty() {
        section(
            &mut s,
            "IMPLANTS ET DISPOSITIFS / DEVICES",
            p.devices
                .iter()
                .map(|d| match &d.since {
                    Some(x) => format!("{} ({x})", d.name),
                    None => d.name.clone(),
                })
                .collect(),
            unknown,
        );
    }
    if p.advance_directives.is_some() || p.organ_donation.is_some() {
        let mut lines = Vec::new();
        if let Some(t) = &p.advance_directives {
            lines.push(t.trim().to_string());
        }
        if let Some(o) = p.organ_donation {
            lines.push(organ_donation_text(o).to_string());
        }
        section(
            &mut s,
            "DIRECTIVES ANTICIPÉES / ADVANCE DIRECTIVES",
            lines,
            unknown,
        );
    }
    if !p.emergency_contacts.is_empty() {
        section(
            &mut s,
            "PERSONNES À PRÉVENIR / EMERGENCY CONTACTS",
            p.emergency_contacts.iter().map(contact_short).collect(),
            unknown,
        );
    }
    if let Some(d) = &p.doctor {
        let mut l = d.name.clone();
        if let Some(t) = &d.phone {
            l.push_str(&format!(" {t}"));
        }
        if let Some(r) = &d.rpps {
            l.push_str(&format!(" (RPPS {r})"));
        }
        section(
            &mut s,
            "MÉDECIN TRAITANT / GENERAL PRACTITIONER",
            vec![l],
            "",
        );
    }
    if let Some(n) = &p.notes {
        section(
            &mut s,
            "NOTES DU PATIENT / PATIENT'S NOTES",
            n.lines().map(str::to_string).collect(),
            "",
        );
    }
    let _ = writeln!(
        s,
        "Ces informations sont déclarées par le patient ; vérifiez-les.\n\
         This information is reported by the patient; check it."
    );
    s
}

pub fn organ_donation_text(o: OrganDonation) -> &'static str {
    match o {
        OrganDonation::Yes => "Don d'organes : accepte / organ donation: consents",
        OrganDonation::No => "Don d'organes : refuse / organ donation: refuses",
    }
}

// ---------------------------------------------------------------------------------------------
// Sealed versions

/// How a version came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Import,
    Edit,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Import => "import",
            Source::Edit => "edit",
        }
    }
}

/// The root's record of one version: where its sealed object is and what it must hash to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRef {
    pub version: u32,
    pub at: jiff::Timestamp,
    pub source: Source,
    pub object: String,
    pub size: u64,
    pub blake3: String,
}

impl VersionRef {
    pub fn file_entry(&self) -> FileEntry {
        FileEntry {
            size: self.size,
            blake3: self.blake3.clone(),
        }
    }
}

/// One version as sealed: self-describing, so an object moved from another vault or another
/// version is refused even before its content is used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sealed {
    pub format: u32,
    pub vault_id: String,
    pub kind: String,
    pub version: u32,
    pub at: jiff::Timestamp,
    pub actor: crate::domain::Actor,
    pub source: Source,
    pub profile: Profile,
}

const KIND: &str = "profile";

/// A new version sealed in the vault's `tmp/`, and its record for the root.
pub struct SealedVersion {
    pub tmp: tempfile::TempPath,
    pub reference: VersionRef,
}

pub fn seal(
    vault: &dyn Store,
    recipients: &[age::x25519::Recipient],
    profile: &Profile,
    version: u32,
    source: Source,
    at: jiff::Timestamp,
) -> anyhow::Result<SealedVersion> {
    use std::io::Write;
    let sealed = Sealed {
        format: crate::FORMAT_VERSION,
        vault_id: vault.config().vault_id.clone(),
        kind: KIND.into(),
        version,
        at,
        actor: crate::domain::Actor::Patient,
        source,
        profile: profile.clone(),
    };
    let json =
        zeroize::Zeroizing::new(serde_json::to_vec(&sealed).context("cannot encode the profile")?);
    let bytes = crypto::seal_bytes(&json, recipients).context("cannot encrypt the profile")?;
    let mut tmp = crate::fsutil::private_tempfile(&vault.tmp_dir())
        .with_context(|| format!("cannot write in {}", vault.tmp_dir().display()))?;
    tmp.write_all(&bytes)
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    Ok(SealedVersion {
        tmp: tmp.into_temp_path(),
        reference: VersionRef {
            version,
            at,
            source,
            object: crate::ids::random_id(),
            size: bytes.len() as u64,
            blake3: blake3::hash(&bytes).to_hex().to_string(),
        },
    })
}

/// Reads one version, checking its object against the root before decrypting it and its
/// content after (vault, kind, version).
pub fn read(vault: &dyn Store, keys: &Unlocked, r: &VersionRef) -> Result<Sealed, Error> {
    Ok(read_with_plaintext(vault, keys, r)?.0)
}

/// Like `read`, with the exact plaintext (re-encryption seals it again unchanged).
pub fn read_with_plaintext(
    vault: &dyn Store,
    keys: &Unlocked,
    r: &VersionRef,
) -> Result<(Sealed, zeroize::Zeroizing<Vec<u8>>), Error> {
    let path = vault.object_path(&r.object);
    let bad = |why: String| {
        Error::Integrity(format!(
            "{} (emergency profile, version {}): {why}",
            path.display(),
            r.version
        ))
    };
    if !crate::ids::is_full_id(&r.object) {
        return Err(bad("the root names an invalid object".into()));
    }
    let bytes = crate::fsutil::read_limited(&path, crypto::max_sealed_len(MAX_SEALED)).map_err(
        |e| match e.kind() {
            std::io::ErrorKind::NotFound => bad("missing".into()),
            _ => bad(format!("cannot read it: {e}")),
        },
    )?;
    if bytes.len() as u64 != r.size || blake3::hash(&bytes).to_hex().as_str() != r.blake3 {
        return Err(bad(
            "not the version the manifest names (altered, an older copy, or from another vault)"
                .into(),
        ));
    }
    let plain = zeroize::Zeroizing::new(
        crypto::open_bytes(&bytes, keys.as_dyn(), MAX_SEALED).map_err(|e| bad(e.to_string()))?,
    );
    let s: Sealed = serde_json::from_slice(&plain).map_err(|e| bad(format!("unreadable: {e}")))?;
    if s.vault_id != vault.config().vault_id || s.kind != KIND || s.version != r.version {
        return Err(bad("belongs elsewhere (another vault or version)".into()));
    }
    Ok((s, plain))
}

/// Checks that the root's list of versions runs 1, 2, … N with valid object ids.
pub fn check_versions(versions: &[VersionRef]) -> Result<(), Error> {
    for (i, v) in versions.iter().enumerate() {
        if v.version as usize != i + 1 || !crate::ids::is_full_id(&v.object) {
            return Err(Error::Integrity(
                "the manifest's list of emergency profile versions is not 1, 2, … N".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dates() {
        for ok in ["2019", "2019-03", "2019-03-14"] {
            assert_eq!(PartialDate::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["19", "2019-13", "2019-02-30", "2019/03", "", "1800"] {
            assert!(PartialDate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn toml_round_trips_with_bare_dates_and_numbers() {
        let p = Profile::from_toml(
            "birth_date = 1937-04-12\nblood_group = \"a pos\"\n[[immunizations]]\nvaccine = \"DTP\"\ndate = 2021\n",
            "x",
        )
        .unwrap();
        assert_eq!(p.birth_date.as_ref().unwrap().as_str(), "1937-04-12");
        assert_eq!(p.immunizations[0].date.as_ref().unwrap().as_str(), "2021");
        let back = Profile::from_toml(&p.to_toml().unwrap(), "y").unwrap();
        assert_eq!(back, p);
        assert_eq!(blood_group("a pos").as_deref(), Some("A+"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = Profile::from_toml("language = \"fr\"\n\nallergie = 3\n", "p.toml").unwrap_err();
        let m = e.to_string();
        assert!(
            m.starts_with("p.toml, line 3: unknown field `allergie`"),
            "{m}"
        );
    }
}
