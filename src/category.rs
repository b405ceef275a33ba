//! Document categories: the DMP document classes, under short slugs a patient can type.

use crate::error::Error;

/// One category: its slug, a French label, and the DMP class code it maps to.
pub struct Category {
    pub slug: &'static str,
    pub label: &'static str,
    /// The DMP class code (ANS JDV_J57-ClassCode-DMP), for mapping records to the DMP.
    pub dmp_class: &'static str,
}

pub const DEFAULT: &str = "autre";
/// The patient's own notes.
pub const NOTE: &str = "note-patient";

pub const ALL: &[Category] = &[
    Category {
        slug: "compte-rendu",
        label: "Compte rendu",
        dmp_class: "10",
    },
    Category {
        slug: "synthese",
        label: "Synthèse",
        dmp_class: "11",
    },
    Category {
        slug: "imagerie",
        label: "Imagerie médicale",
        dmp_class: "31",
    },
    Category {
        slug: "prescription",
        label: "Prescription",
        dmp_class: "42",
    },
    Category {
        slug: "dispensation",
        label: "Dispensation",
        dmp_class: "43",
    },
    Category {
        slug: "plan-de-soins",
        label: "Plan ou protocole de soins",
        dmp_class: "44",
    },
    Category {
        slug: "traitement",
        label: "Traitement administré",
        dmp_class: "45",
    },
    Category {
        slug: "certificat",
        label: "Certificat, déclaration",
        dmp_class: "52",
    },
    Category {
        slug: "remboursement",
        label: "Données de remboursement",
        dmp_class: "60",
    },
    Category {
        slug: "note-patient",
        label: "Document déposé par le patient",
        dmp_class: "90",
    },
    Category {
        slug: "autre",
        label: "Autre",
        dmp_class: "95",
    },
];

pub fn find(slug: &str) -> Option<&'static Category> {
    ALL.iter().find(|c| c.slug == slug)
}

/// Words people use for a category, beyond its slug, label and DMP code.
pub const ALIASES: &[(&str, &str)] = &[
    ("ordonnance", "prescription"),
    ("radiologie", "imagerie"),
    ("radio", "imagerie"),
    ("cr", "compte-rendu"),
    ("note", "note-patient"),
];

/// The aliases of the category `slug` (`carnet categories` shows them; completion offers them).
pub fn aliases(slug: &str) -> impl Iterator<Item = &'static str> + '_ {
    ALIASES
        .iter()
        .filter(move |(_, s)| *s == slug)
        .map(|(alias, _)| *alias)
}

fn normalize(s: &str) -> String {
    crate::text::fold_accents(s.trim()).replace([' ', '_'], "-")
}

/// Finds a category from what a person (or a folder name) calls it: the slug, the label, the
/// DMP class code, a plural ("comptes-rendus"), or a common alias ("ordonnances", "radio").
pub fn lookup(name: &str) -> Option<&'static Category> {
    lookup_with(name, true)
}

/// Like `lookup`, without DMP codes: a folder named "31" or "10" is a day or a month.
pub fn lookup_folder(name: &str) -> Option<&'static Category> {
    lookup_with(name, false)
}

fn lookup_with(name: &str, codes: bool) -> Option<&'static Category> {
    let n = normalize(name);
    let singular: String = n
        .split('-')
        .map(|w| w.strip_suffix('s').unwrap_or(w))
        .collect::<Vec<_>>()
        .join("-");
    ALL.iter()
        .find(|c| {
            c.slug == n
                || c.slug == singular
                || normalize(c.label) == n
                || (codes && c.dmp_class == n)
        })
        .or_else(|| {
            ALIASES
                .iter()
                .find(|(alias, _)| *alias == n || *alias == singular)
                .and_then(|(_, slug)| find(slug))
        })
}

/// Checks a category typed by the user, naming the valid ones when it is wrong.
pub fn parse(slug: &str) -> Result<&'static str, Error> {
    lookup(slug).map(|c| c.slug).ok_or_else(|| {
        Error::input(
            format!("unknown category {slug:?}"),
            format!(
                "use one of: {} (see `carnet categories`)",
                ALL.iter().map(|c| c.slug).collect::<Vec<_>>().join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_are_unique_and_parse_case_insensitively() {
        let mut slugs: Vec<_> = super::ALL.iter().map(|c| c.slug).collect();
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), super::ALL.len());
        assert_eq!(super::parse("Imagerie").unwrap(), "imagerie");
        assert!(super::parse("imagrie").is_err());
    }

    #[test]
    fn folders_and_people_name_categories_in_many_ways() {
        for (name, slug) in [
            ("Imagerie médicale", "imagerie"),
            ("comptes-rendus", "compte-rendu"),
            ("Comptes rendus", "compte-rendu"),
            ("ordonnances", "prescription"),
            ("31", "imagerie"),
            ("Certificats", "certificat"),
            ("Synthèse", "synthese"),
        ] {
            assert_eq!(super::lookup(name).map(|c| c.slug), Some(slug), "{name}");
        }
        assert!(super::lookup("2024").is_none());
        assert!(
            super::lookup_folder("31").is_none(),
            "a day folder is not imagerie"
        );
        assert!(super::lookup("misc").is_none());
    }
}
