//! Backend-independent conformance cases for [`Store`](crate::Store).
//!
//! Every case is an `async fn case(store: SharedStore)` that panics on a violation. The
//! [`conformance_tests!`](crate::conformance_tests) macro expands each case into a
//! `sqlite_<case>` test (fresh temporary SQLite file) and a `postgres_<case>` test (fresh
//! schema `t_<random>` in the database named by `CROSSDOCK_TEST_POSTGRES`, default
//! [`harness::DEFAULT_POSTGRES`]); both are dropped afterwards. A PostgreSQL test **fails**
//! when the server does not answer.
//!
//! Compiled for the crate's own tests and, with the `conformance` feature, for other crates
//! (the engine can run its own scenarios on both backends with [`run_sqlite`] and
//! [`run_postgres`]).

pub mod bindings;
pub mod cluster;
pub mod dead_letters;
pub mod events;
pub mod fixtures;
pub mod harness;
pub mod inbox;
pub mod kv;
pub mod model;
pub mod queue;
pub mod read_models;
pub mod throughput;

pub use harness::{TestStore, run_postgres, run_sqlite};

/// Expands conformance cases into one test per backend:
///
/// ```ignore
/// crossdock_store::conformance_tests! {
///     sqlite_inbox_dedupe, postgres_inbox_dedupe => crossdock_store::conformance::inbox::dedupe;
/// }
/// ```
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_tests {
    ($($sqlite:ident, $postgres:ident => $case:path;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            $crate::conformance::run_sqlite($case).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            $crate::conformance::run_postgres($case).await;
        }
    )*};
}

#[cfg(test)]
mod suite {
    use super::*;

    crate::conformance_tests! {
        sqlite_cluster_one_live_incarnation_per_name, postgres_cluster_one_live_incarnation_per_name
            => cluster::one_live_incarnation_per_name;
        sqlite_cluster_concurrent_claims_have_one_winner, postgres_cluster_concurrent_claims_have_one_winner
            => cluster::concurrent_claims_have_one_winner;
        sqlite_inbox_dedupes_by_source_and_message_id, postgres_inbox_dedupes_by_source_and_message_id
            => inbox::dedupes_by_source_and_message_id;
        sqlite_inbox_dedupes_concurrent_accepts, postgres_inbox_dedupes_concurrent_accepts
            => inbox::dedupes_concurrent_accepts;
        sqlite_inbox_accept_leasing_claims_a_ready_task, postgres_inbox_accept_leasing_claims_a_ready_task
            => inbox::accept_leasing_claims_a_ready_task;
        sqlite_inbox_page_is_stored_in_order_with_its_cursor, postgres_inbox_page_is_stored_in_order_with_its_cursor
            => inbox::page_is_stored_in_order_with_its_cursor;
        sqlite_inbound_status_follows_decisions, postgres_inbound_status_follows_decisions
            => inbox::status_follows_decisions;

        sqlite_events_are_appended_and_read_in_order, postgres_events_are_appended_and_read_in_order
            => events::appended_and_read_in_order;
        sqlite_version_conflict_writes_nothing, postgres_version_conflict_writes_nothing
            => events::version_conflict_writes_nothing;
        sqlite_concurrent_decisions_on_one_stream_have_one_winner, postgres_concurrent_decisions_on_one_stream_have_one_winner
            => events::concurrent_decisions_on_one_stream_have_one_winner;
        sqlite_read_all_never_skips_a_committed_event, postgres_read_all_never_skips_a_committed_event
            => events::read_all_never_skips_a_committed_event;

        sqlite_lease_takes_due_tasks_oldest_first, postgres_lease_takes_due_tasks_oldest_first
            => queue::lease_takes_due_tasks_oldest_first;
        sqlite_expired_lease_is_retaken_and_old_token_is_lost, postgres_expired_lease_is_retaken_and_old_token_is_lost
            => queue::expired_lease_is_retaken_and_old_token_is_lost;
        sqlite_key_never_has_two_tasks_in_flight, postgres_key_never_has_two_tasks_in_flight
            => queue::key_never_has_two_tasks_in_flight;
        sqlite_concurrent_workers_never_overlap_on_a_key, postgres_concurrent_workers_never_overlap_on_a_key
            => queue::concurrent_workers_never_overlap_on_a_key;
        sqlite_retried_older_task_holds_back_its_key, postgres_retried_older_task_holds_back_its_key
            => queue::retried_older_task_holds_back_its_key;
        sqlite_dedupe_collapses_pending_but_not_leased, postgres_dedupe_collapses_pending_but_not_leased
            => queue::dedupe_collapses_pending_but_not_leased;
        sqlite_complete_is_atomic_with_its_decision, postgres_complete_is_atomic_with_its_decision
            => queue::complete_is_atomic_with_its_decision;
        sqlite_complete_claims_the_next_ready_tasks, postgres_complete_claims_the_next_ready_tasks
            => queue::complete_claims_the_next_ready_tasks;
        sqlite_complete_leases_the_lanes_next_ready_tasks, postgres_complete_leases_the_lanes_next_ready_tasks
            => queue::complete_leases_the_lanes_next_ready_tasks;
        sqlite_release_all_returns_leases_without_an_attempt, postgres_release_all_returns_leases_without_an_attempt
            => queue::release_all_returns_leases_without_an_attempt;
        sqlite_lane_depths_count_by_state, postgres_lane_depths_count_by_state
            => queue::lane_depths_count_by_state;

        sqlite_blocking_dead_letter_holds_key_until_retried, postgres_blocking_dead_letter_holds_key_until_retried
            => dead_letters::blocking_holds_key_until_retried;
        sqlite_blocking_dead_letter_is_released_by_resolve, postgres_blocking_dead_letter_is_released_by_resolve
            => dead_letters::blocking_is_released_by_resolve;
        sqlite_non_blocking_dead_letter_leaves_the_queue, postgres_non_blocking_dead_letter_leaves_the_queue
            => dead_letters::non_blocking_leaves_the_queue;
        sqlite_dead_letter_retry_takes_an_edited_payload, postgres_dead_letter_retry_takes_an_edited_payload
            => dead_letters::retry_takes_an_edited_payload;
        sqlite_dead_letter_actions_need_an_open_letter, postgres_dead_letter_actions_need_an_open_letter
            => dead_letters::actions_need_an_open_letter;
        sqlite_dead_letters_auto_resolve, postgres_dead_letters_auto_resolve
            => dead_letters::auto_resolve;
        sqlite_dead_letters_are_filtered, postgres_dead_letters_are_filtered
            => dead_letters::filtered;

        sqlite_cursors_round_trip, postgres_cursors_round_trip
            => read_models::cursors_round_trip;
        sqlite_order_rows_never_go_back, postgres_order_rows_never_go_back
            => read_models::order_rows_never_go_back;
        sqlite_orders_are_queried_by_status_account_and_time, postgres_orders_are_queried_by_status_account_and_time
            => read_models::orders_are_queried;
        sqlite_inventory_ignores_older_measurements, postgres_inventory_ignores_older_measurements
            => read_models::inventory_ignores_older_measurements;
        sqlite_refs_resolve_any_id, postgres_refs_resolve_any_id
            => read_models::refs_resolve_any_id;
        sqlite_accounts_are_upserted, postgres_accounts_are_upserted
            => read_models::accounts_are_upserted;
        sqlite_timeline_and_audit_keep_order, postgres_timeline_and_audit_keep_order
            => read_models::timeline_and_audit_keep_order;
        sqlite_timeline_entries_of_one_write_come_back_whole, postgres_timeline_entries_of_one_write_come_back_whole
            => read_models::timeline_entries_of_one_write_come_back_whole;

        sqlite_reference_is_bound_to_one_order, postgres_reference_is_bound_to_one_order
            => bindings::reference_is_bound_to_one_order;
        sqlite_concurrent_bindings_have_one_winner, postgres_concurrent_bindings_have_one_winner
            => bindings::concurrent_bindings_have_one_winner;

        sqlite_kv_records, postgres_kv_records
            => kv::records;
        sqlite_kv_insert_has_one_winner, postgres_kv_insert_has_one_winner
            => kv::insert_has_one_winner;

        sqlite_queue_matches_its_model, postgres_queue_matches_its_model
            => model::queue_matches_its_model;

        sqlite_group_commit_throughput, postgres_group_commit_throughput
            => throughput::concurrent_completes;
    }
}
