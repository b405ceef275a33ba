//! What a command did to the vault, as data for the CLI's hooks (`cli::hooks`): one event per
//! committed log entry, with the vault's id and, only when a hook asks for them, the titles of
//! the documents it names. The library records events in a `Journal` the CLI hands to the
//! `Vault` it opens; it never runs anything itself (a vault on a stick must not make the
//! computer that opens it run code, and the library does not touch processes).

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One thing that happened, as a hook receives it on its standard input (JSON).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// The log action (`add`, `receive`, `grant`, `opened`…), or `verify-failed`.
    pub action: String,
    pub time: jiff::Timestamp,
    pub vault_id: String,
    /// `patient`, or `pro:RPPS-or-ADELI` for a deposit or a receipt.
    pub actor: String,
    /// The ids of the documents the entry names, and how many.
    pub documents: Vec<String>,
    pub count: usize,
    /// The documents' titles, in the order of `documents` (only for hooks with
    /// `with_titles = true`; the others never get them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub titles: Option<Vec<String>>,
    /// Set by `carnet hooks test`: a sample, nothing happened.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl Event {
    /// The same event without titles, for hooks that did not ask for them.
    pub fn without_titles(&self) -> Event {
        Event {
            titles: None,
            ..self.clone()
        }
    }
}

/// Where commits record their events. Cloned handles share one list.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    events: Arc<Mutex<Vec<Event>>>,
    /// Look up titles (reading the shards the entries name): only when a hook wants them.
    with_titles: bool,
}

impl Journal {
    pub fn new(with_titles: bool) -> Journal {
        Journal {
            events: Arc::default(),
            with_titles,
        }
    }

    pub fn with_titles(&self) -> bool {
        self.with_titles
    }

    pub fn record(&self, e: Event) {
        if let Ok(mut v) = self.events.lock() {
            v.push(e);
        }
    }

    /// The events recorded so far, oldest first; the journal is emptied.
    pub fn take(&self) -> Vec<Event> {
        self.events
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}
