//! The text a station-list search (`q`) looks in: every station's id, name and address, lower
//! case, made once per version of the catalogue instead of on every request.

use std::sync::{Arc, Mutex};

use csm_core::model::Station;

/// The lower-cased fields of the catalogue last searched.
#[derive(Debug, Default)]
pub struct SearchIndex {
    built: Mutex<Option<Arc<SearchText>>>,
}

/// Id, name and address (empty when there is none) of each station, lower case, in catalogue
/// order.
#[derive(Debug)]
pub struct SearchText {
    catalogue: Arc<Vec<Arc<Station>>>,
    fields: Vec<[Box<str>; 3]>,
}

impl SearchIndex {
    /// The text of `catalogue`, made now if the catalogue changed since the last search.
    pub fn text_of(&self, catalogue: &Arc<Vec<Arc<Station>>>) -> Arc<SearchText> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(text) = built
            .as_ref()
            .filter(|t| Arc::ptr_eq(&t.catalogue, catalogue))
        {
            return Arc::clone(text);
        }
        let fields = catalogue
            .iter()
            .map(|station| {
                [
                    station.id.as_str().to_lowercase().into(),
                    station.name.to_lowercase().into(),
                    station
                        .address
                        .as_deref()
                        .unwrap_or_default()
                        .to_lowercase()
                        .into(),
                ]
            })
            .collect();
        let text = Arc::new(SearchText {
            catalogue: Arc::clone(catalogue),
            fields,
        });
        *built = Some(Arc::clone(&text));
        text
    }
}

impl SearchText {
    /// Whether the station at `index` of the catalogue has `needle` (lower case, not empty) in
    /// its id, name or address.
    pub fn matches(&self, index: usize, needle: &str) -> bool {
        self.fields[index]
            .iter()
            .any(|field| field.contains(needle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csm_core::model::StationId;

    fn station(id: &str, name: &str, address: Option<&str>) -> Arc<Station> {
        Arc::new(Station {
            id: StationId::parse(id).unwrap(),
            name: name.into(),
            address: address.map(Into::into),
            lat: None,
            lng: None,
            vendor: "simulator".into(),
            enabled: true,
            port_count: 2,
        })
    }

    #[test]
    fn searches_ids_names_and_addresses_and_follows_the_catalogue() {
        let index = SearchIndex::default();
        let first = Arc::new(vec![
            station("AB-1", "Gym Ä", None),
            station("x2", "图书馆", Some("信阳 Road")),
        ]);
        let text = index.text_of(&first);
        assert!(text.matches(0, "ab-"));
        assert!(text.matches(0, "gym ä"));
        assert!(!text.matches(0, "road"), "no address, no match");
        assert!(text.matches(1, "图书"));
        assert!(text.matches(1, "road"));
        assert!(Arc::ptr_eq(&text, &index.text_of(&first)), "made once");
        let second = Arc::new(vec![station("new", "Other", None)]);
        let text = index.text_of(&second);
        assert!(text.matches(0, "oth"));
    }
}
