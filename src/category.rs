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

/// Checks a slug typed by the user, naming the valid ones when it is wrong.
pub fn parse(slug: &str) -> Result<&'static str, Error> {
    let lower = slug.trim().to_lowercase();
    find(&lower).map(|c| c.slug).ok_or_else(|| {
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
        assert!(super::parse("radio").is_err());
    }
}
