//! Executors learn of work sooner: the scheduler's `poll_work` waits (long polling) for a
//! runnable stage instead of answering an idle executor "nothing".
//!
//! Under pull-staged scheduling an executor whose poll brought no task sleeps 50 ms before it
//! asks again (Ballista 55's executor loop; its wake-up hook is wired only in Ballista's
//! in-process standalone cluster). A finished task's status travels in the poll after it, and
//! the stages it unblocks become runnable a moment after that poll was answered, so every stage
//! of a job waited about 50 ms for its executors (measured: 40–60 ms per stage, most of a small
//! query's time on the cluster). Here an executor with every slot free that gets no task is
//! held for up to [`HOLD`], and asked again as soon as the scheduler reports new work (its
//! `on_work_available` hook: a job submitted, a stage runnable). An executor with a task still
//! running is never held, so its next finished task's status is not delayed.

use std::sync::Arc;
use std::time::Duration;

use ballista_core::serde::protobuf::executor_resource::Resource;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpc;
use ballista_core::serde::protobuf::*;
use ballista_scheduler::config::OnWorkAvailableFn;
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

/// How long an idle executor's poll may wait for work (well under the executor timeout: each
/// poll is the executor's heart-beat).
pub const HOLD: Duration = Duration::from_millis(500);

type Inner = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

/// The scheduler's gRPC service, with `poll_work` held while there is no work.
pub struct LongPoll {
    inner: Inner,
    work: Arc<Notify>,
}

/// The wake-up the scheduler calls when work becomes available (its `on_work_available`), and
/// the signal [`LongPoll`] waits on.
pub fn work_signal() -> (Arc<Notify>, OnWorkAvailableFn) {
    let work = Arc::new(Notify::new());
    let signal = work.clone();
    (work, Arc::new(move |_| signal.notify_waiters()))
}

impl LongPoll {
    /// `inner` answering, held on `work` (from [`work_signal`]).
    pub fn new(inner: Inner, work: Arc<Notify>) -> LongPoll {
        LongPoll { inner, work }
    }
}

/// The executor's task slots, from its registration.
fn slots(metadata: &ExecutorRegistration) -> Option<u32> {
    metadata
        .specification
        .as_ref()?
        .resources
        .iter()
        .find_map(|r| r.resource.map(|Resource::Vcores(n)| n))
}

#[tonic::async_trait]
impl SchedulerGrpc for LongPoll {
    async fn poll_work(
        &self,
        request: Request<PollWorkParams>,
    ) -> Result<Response<PollWorkResult>, Status> {
        let params = request.get_ref();
        // Held only when nothing runs there (no status waits for the next poll) and the
        // executor names its host (a repeated poll carries no peer address).
        let again = params.metadata.clone().filter(|m| {
            m.host.is_some() && slots(m).is_some_and(|n| n > 0 && n == params.num_free_vcores)
        });
        let free = params.num_free_vcores;
        // Listening before the first answer: work that appears meanwhile is not missed.
        let mut notified = std::pin::pin!(self.work.notified());
        notified.as_mut().enable();
        let first = SchedulerGrpc::poll_work(&self.inner, request).await?;
        let Some(metadata) = again else {
            return Ok(first);
        };
        if !first.get_ref().tasks.is_empty() {
            return Ok(first);
        }
        let mut jobs_to_clean = first.into_inner().jobs_to_clean;
        let deadline = tokio::time::Instant::now() + HOLD;
        loop {
            if tokio::time::timeout_at(deadline, notified.as_mut())
                .await
                .is_err()
            {
                return Ok(Response::new(PollWorkResult {
                    tasks: vec![],
                    jobs_to_clean,
                }));
            }
            notified.set(self.work.notified());
            notified.as_mut().enable();
            let next = SchedulerGrpc::poll_work(
                &self.inner,
                Request::new(PollWorkParams {
                    metadata: Some(metadata.clone()),
                    num_free_vcores: free,
                    task_status: vec![],
                }),
            )
            .await?
            .into_inner();
            jobs_to_clean.extend(next.jobs_to_clean);
            if !next.tasks.is_empty() {
                return Ok(Response::new(PollWorkResult {
                    tasks: next.tasks,
                    jobs_to_clean,
                }));
            }
        }
    }

    async fn register_executor(
        &self,
        request: Request<RegisterExecutorParams>,
    ) -> Result<Response<RegisterExecutorResult>, Status> {
        SchedulerGrpc::register_executor(&self.inner, request).await
    }

    async fn heart_beat_from_executor(
        &self,
        request: Request<HeartBeatParams>,
    ) -> Result<Response<HeartBeatResult>, Status> {
        SchedulerGrpc::heart_beat_from_executor(&self.inner, request).await
    }

    async fn update_task_status(
        &self,
        request: Request<UpdateTaskStatusParams>,
    ) -> Result<Response<UpdateTaskStatusResult>, Status> {
        SchedulerGrpc::update_task_status(&self.inner, request).await
    }

    async fn create_update_session(
        &self,
        request: Request<CreateUpdateSessionParams>,
    ) -> Result<Response<CreateUpdateSessionResult>, Status> {
        SchedulerGrpc::create_update_session(&self.inner, request).await
    }

    async fn remove_session(
        &self,
        request: Request<RemoveSessionParams>,
    ) -> Result<Response<RemoveSessionResult>, Status> {
        SchedulerGrpc::remove_session(&self.inner, request).await
    }

    type ExecuteQueryPushStream = <Inner as SchedulerGrpc>::ExecuteQueryPushStream;

    async fn execute_query_push(
        &self,
        request: Request<ExecuteQueryParams>,
    ) -> Result<Response<Self::ExecuteQueryPushStream>, Status> {
        SchedulerGrpc::execute_query_push(&self.inner, request).await
    }

    async fn execute_query(
        &self,
        request: Request<ExecuteQueryParams>,
    ) -> Result<Response<ExecuteQueryResult>, Status> {
        SchedulerGrpc::execute_query(&self.inner, request).await
    }

    async fn get_job_status(
        &self,
        request: Request<GetJobStatusParams>,
    ) -> Result<Response<GetJobStatusResult>, Status> {
        SchedulerGrpc::get_job_status(&self.inner, request).await
    }

    async fn get_job_metrics(
        &self,
        request: Request<GetJobMetricsParams>,
    ) -> Result<Response<GetJobMetricsResult>, Status> {
        SchedulerGrpc::get_job_metrics(&self.inner, request).await
    }

    async fn executor_stopped(
        &self,
        request: Request<ExecutorStoppedParams>,
    ) -> Result<Response<ExecutorStoppedResult>, Status> {
        SchedulerGrpc::executor_stopped(&self.inner, request).await
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobParams>,
    ) -> Result<Response<CancelJobResult>, Status> {
        SchedulerGrpc::cancel_job(&self.inner, request).await
    }

    async fn clean_job_data(
        &self,
        request: Request<CleanJobDataParams>,
    ) -> Result<Response<CleanJobDataResult>, Status> {
        SchedulerGrpc::clean_job_data(&self.inner, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_come_from_the_registration() {
        let mut m = ExecutorRegistration {
            id: "e".into(),
            ..Default::default()
        };
        assert_eq!(slots(&m), None);
        m.specification = Some(ExecutorSpecification {
            resources: vec![ExecutorResource {
                resource: Some(Resource::Vcores(3)),
            }],
        });
        assert_eq!(slots(&m), Some(3));
    }

    #[tokio::test]
    async fn the_signal_wakes_a_listener_armed_before_it() {
        let (work, signal) = work_signal();
        let mut notified = std::pin::pin!(work.notified());
        notified.as_mut().enable();
        signal(
            ballista_scheduler::config::WorkAvailableReason::JobSubmitted { job_id: "j".into() },
        );
        tokio::time::timeout(Duration::from_secs(1), notified)
            .await
            .expect("woken");
    }
}
