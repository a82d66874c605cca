//! Listing stations: filters (search text, port status, vendor, named ids) and a page of the
//! matches, the same for the API's `GET /api/stations` and `csm-cli stations list`.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::InvalidInput;
use crate::model::{PortStatus, Station, StationId};

use super::{MonitorError, StationView, Stations};

/// Which stations to list, and which page of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StationQuery {
    /// Only stations whose id, name or address contains this text (case-insensitive).
    pub search: Option<String>,
    /// Only stations with at least one port in this status.
    pub status: Option<PortStatus>,
    /// Only stations of this vendor profile.
    pub vendor: Option<String>,
    /// Only these stations.
    pub ids: Option<HashSet<StationId>>,
    /// At most this many ([`StationQuery::MAX_PAGE`] at most); `None`: all.
    pub limit: Option<usize>,
    /// Matches to skip first.
    pub offset: usize,
    /// Whether the views carry the estimates of their occupied ports (a list that shows ports
    /// does; a summary needs none).
    pub estimates: bool,
}

/// One page of a station list.
#[derive(Clone, Debug)]
pub struct StationPage {
    /// How many stations match, on every page together.
    pub total: usize,
    /// The page's stations with their state, in id order.
    pub views: Vec<StationView>,
}

impl StationQuery {
    /// Most stations one page may hold.
    pub const MAX_PAGE: usize = 10_000;
    /// Most ids one query may name.
    pub const MAX_IDS: usize = 1_000;

    /// The stations a comma-separated list names (`S0001,S0002`, spaces allowed around each),
    /// or what is wrong with it.
    pub fn parse_ids(ids: &str) -> Result<HashSet<StationId>, InvalidInput> {
        let items: Vec<&str> = ids.split(',').collect();
        let names: Vec<&str> = items
            .iter()
            .map(|id| id.trim_matches(' '))
            .filter(|id| !id.is_empty())
            .collect();
        if let Some(odd) = names.iter().find(|id| id.trim() != **id) {
            return Err(InvalidInput::new(
                "ids",
                format!("{odd:?} has other white space than spaces around it"),
            ));
        }
        // Empty entries count too: the list is bounded by its length as the API declares it.
        if names.len().max(items.len()) > Self::MAX_IDS {
            return Err(InvalidInput::new(
                "ids",
                format!(
                    "names {} stations; the limit is {}",
                    items.len(),
                    Self::MAX_IDS
                ),
            ));
        }
        names
            .into_iter()
            .map(|id| StationId::parse(id).map_err(|e| e.at("ids")))
            .collect()
    }

    /// Checks the bounds of the page.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if let Some(limit) = self.limit
            && !(1..=Self::MAX_PAGE).contains(&limit)
        {
            return Err(InvalidInput::new(
                "limit",
                format!(
                    "{limit} is outside 1..={}; read a larger fleet a page at a time with offset",
                    Self::MAX_PAGE
                ),
            ));
        }
        Ok(())
    }
}

impl Stations {
    /// The stations a query matches, one page of them with their states. Filters work on the
    /// catalogue first; states are read only for the page (or, when filtering by port status,
    /// for every match).
    pub async fn list(&self, query: &StationQuery) -> Result<StationPage, MonitorError> {
        query.validate()?;
        let catalog = self.catalog().await?;
        let needle = query
            .search
            .as_deref()
            .map(str::to_lowercase)
            .filter(|needle| !needle.is_empty());
        let mut matching = catalog
            .stations
            .iter()
            .enumerate()
            .filter(|(index, station)| {
                needle
                    .as_deref()
                    .is_none_or(|needle| catalog.matches(*index, needle))
                    && query.vendor.as_deref().is_none_or(|v| station.vendor == v)
                    && query
                        .ids
                        .as_ref()
                        .is_none_or(|ids| ids.contains(&station.id))
            })
            .map(|(_, station)| station);
        let limit = query.limit.unwrap_or(usize::MAX);
        match query.status {
            Some(wanted) => {
                let views: Vec<StationView> = self
                    .views_with(matching.cloned().collect(), query.estimates)
                    .await
                    .into_iter()
                    .filter(|view| {
                        view.state
                            .as_deref()
                            .is_some_and(|s| s.ports.iter().any(|p| p.reading.status == wanted))
                    })
                    .collect();
                Ok(StationPage {
                    total: views.len(),
                    views: views.into_iter().skip(query.offset).take(limit).collect(),
                })
            }
            None => {
                // Only the page is kept; the matches before and after it are counted.
                let before = matching.by_ref().take(query.offset).count();
                let page: Vec<Arc<Station>> = matching.by_ref().take(limit).cloned().collect();
                let total = before + page.len() + matching.count();
                Ok(StationPage {
                    total,
                    views: self.views_with(page, query.estimates).await,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_pages_are_checked() {
        let ids = StationQuery::parse_ids(" S1, ,S2,S1").unwrap();
        assert_eq!(ids.len(), 2);
        let err = StationQuery::parse_ids("S1,a b").unwrap_err();
        assert_eq!(err.field, "ids: station id");
        let many = vec!["S"; 1001].join(",");
        assert!(StationQuery::parse_ids(&many).is_err());
        let page = |limit| StationQuery {
            limit: Some(limit),
            ..StationQuery::default()
        };
        assert!(page(0).validate().is_err());
        assert!(page(10_001).validate().is_err());
        assert!(page(10_000).validate().is_ok());
    }
}
