#pragma once
// Reads what the loop needs from the store: a listener's songs and every generated
// track with its latest rating and plays (for the DatasetBuilder), and the counts the
// scheduler decides on.

#include <optional>

#include "loop/dataset_builder.hpp"
#include "loop/scheduler.hpp"
#include "store/store.hpp"

namespace tuneloop::loop {

/// The listener's songs and generated tracks with their feedback. Plays still running
/// (no end yet) are left out. Throws store::NotFoundError for an unknown listener,
/// store::StoreError on a database failure.
DatasetInputs read_dataset_inputs(store::Store& store, store::Id listener_id);

/// The newest iteration of the listener that is not deleted; empty if none.
std::optional<store::Iteration> latest_iteration(store::Store& store, store::Id listener_id);

/// The scheduler's view of the listener at `now`: when the latest iteration was created,
/// ratings and finished plays since then, and how many tracks have feedback.
/// `utc_offset_minutes` is filled from the process's time zone.
/// Throws as read_dataset_inputs.
ScheduleState read_schedule_state(store::Store& store, store::Id listener_id, UnixMs now,
                                  bool job_running);

}  // namespace tuneloop::loop
