//! Connection lanes: one thread per CPU, each running a single-threaded async runtime, and every
//! accepted connection served for its life by one lane.
//!
//! Why: on a shared work-stealing runtime a connection's request is picked up by whichever worker
//! polls the reactor, so a request and the client that sent it keep landing on different cores, and
//! the order requests are served in drifts from the order they arrived. Measured on the 2-core
//! benchmark machine (docs/benchmarks.md, "Connection lanes"): KV reads at 32 connections had a p99
//! of 3.4-3.7 ms at a median of 0.7 ms; with lanes, 1.0-1.2 ms, and throughput went up.
//!
//! Placement: a lane is pinned to its CPU, and a connection goes to the lane of the CPU its packets
//! arrive on (`SO_INCOMING_CPU`: for loopback the client's CPU, for a NIC the CPU of its receive
//! queue), unless that lane already serves [`SLACK`] more connections than the least busy lane,
//! which then takes it. When the process may use fewer CPUs than it may run on (a cgroup CPU quota),
//! lanes are not pinned and every connection goes to the least busy lane.
//!
//! What a lane gives up is work stealing: a connection stays on its lane even while another lane is
//! idle. Long guest calls therefore yield to their lane at every epoch tick (`tresor-runtime`), so
//! a bcrypt login does not hold up the light requests of the other connections on its lane for
//! longer than a tick.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::TcpStream as StdTcpStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How many more connections than the least busy lane a lane may take for locality's sake.
const SLACK: usize = 2;
/// Every how many reads a connection checks which CPU its packets arrive on.
const SAMPLE_EVERY: u32 = 4;
/// Consecutive samples naming another lane's CPU before the connection moves there.
const MOVE_AFTER: u32 = 3;
/// The least time between two moves of one connection.
const MOVE_INTERVAL: Duration = Duration::from_millis(50);
/// No lane.
const NONE: usize = usize::MAX;

thread_local! {
    /// The index of the lane this thread runs (none on other threads).
    static CURRENT_LANE: Cell<usize> = const { Cell::new(NONE) };
}

/// A connection's serving future.
type Serving = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Makes the future that serves one connection; called on the lane, so what the future registers
/// belongs to that lane (until the connection moves).
pub type Connection = Box<dyn FnOnce(LaneStream) -> Serving + Send>;

enum Handoff {
    /// A newly accepted connection.
    New { stream: StdTcpStream, serve: Connection, open: Open },
    /// A connection moving from another lane, as its serving future.
    Moved { serving: Serving, open: Open, moving: Arc<AtomicUsize> },
}

struct Lane {
    /// The CPU the lane is pinned to (`None`: not pinned).
    cpu: Option<usize>,
    handoffs: mpsc::UnboundedSender<Handoff>,
    /// Connections the lane serves now.
    open: Arc<AtomicUsize>,
}

struct Shared {
    lanes: Vec<Lane>,
}

/// Counts a connection against its lane until it ends or moves.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    fn admit(&self, lane: usize) -> Option<Open> {
        let lane = self.lanes.get(lane)?;
        lane.open.fetch_add(1, Ordering::Relaxed);
        Some(Open(lane.open.clone()))
    }

    fn floor(&self) -> usize {
        self.lanes.iter().map(|l| l.open.load(Ordering::Relaxed)).min().unwrap_or(0)
    }

    /// The lane pinned to `cpu`, if it may take one more connection.
    fn local(&self, cpu: Option<usize>) -> Option<usize> {
        let floor = self.floor();
        let cpu = cpu?;
        self.lanes.iter().position(|l| l.cpu == Some(cpu) && l.open.load(Ordering::Relaxed) <= floor + SLACK)
    }

    /// The lane of `cpu` unless it is [`SLACK`] connections busier than the least busy lane.
    fn choose(&self, cpu: Option<usize>) -> Option<usize> {
        self.local(cpu).or_else(|| {
            let least = self.lanes.iter().enumerate().min_by_key(|(_, l)| l.open.load(Ordering::Relaxed))?;
            Some(least.0)
        })
    }
}

/// The connection lanes of a server, shared by its listeners. Dropping the last handle ends each
/// lane (and drops its open connections) once its queue is empty; drain connections first.
pub struct Lanes(Arc<Shared>);

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").field("cpus", &self.0.lanes.iter().map(|l| l.cpu).collect::<Vec<_>>()).finish()
    }
}

impl Lanes {
    /// Start one lane per CPU the process may use (Linux; elsewhere an `Unsupported` error, and the
    /// caller serves connections on its own runtime).
    pub fn start() -> io::Result<Arc<Self>> {
        let placement = placement()?;
        if placement.is_empty() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "no CPU to run a lane on"));
        }
        let mut receivers = Vec::with_capacity(placement.len());
        let mut lanes = Vec::with_capacity(placement.len());
        for cpu in placement {
            let (tx, rx) = mpsc::unbounded_channel::<Handoff>();
            receivers.push((cpu, rx));
            lanes.push(Lane { cpu, handoffs: tx, open: Arc::new(AtomicUsize::new(0)) });
        }
        let shared = Arc::new(Shared { lanes });
        for (index, (cpu, rx)) in receivers.into_iter().enumerate() {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let shared = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name(format!("tresor-lane-{index}"))
                .spawn(move || run_lane(index, cpu, runtime, rx, shared))?;
        }
        Ok(Arc::new(Self(shared)))
    }

    /// How many lanes there are.
    pub fn len(&self) -> usize {
        self.0.lanes.len()
    }

    /// Always false: [`Lanes::start`] refuses to start none.
    pub fn is_empty(&self) -> bool {
        self.0.lanes.is_empty()
    }

    /// Hand `stream` to a lane, which runs `serve` for it.
    pub fn dispatch(&self, stream: TcpStream, serve: Connection) {
        let cpu = incoming_cpu(&stream);
        let Some(index) = self.0.choose(cpu) else { return };
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "could not hand a connection to its lane");
                return;
            }
        };
        let Some(open) = self.0.admit(index) else { return };
        if self.0.lanes[index].handoffs.send(Handoff::New { stream, serve, open }).is_err() {
            tracing::debug!("connection lane has stopped; connection dropped");
        }
    }
}

fn run_lane(index: usize, cpu: Option<usize>, runtime: tokio::runtime::Runtime, mut rx: mpsc::UnboundedReceiver<Handoff>, shared: Weak<Shared>) {
    CURRENT_LANE.with(|c| c.set(index));
    if let Some(cpu) = cpu {
        pin_to(cpu);
    }
    runtime.block_on(async move {
        while let Some(handoff) = rx.recv().await {
            match handoff {
                Handoff::New { stream, serve, open } => match TcpStream::from_std(stream) {
                    Ok(stream) => {
                        let moving = Arc::new(AtomicUsize::new(NONE));
                        let stream = LaneStream::new(stream, index, moving.clone(), shared.clone());
                        tokio::spawn(drive(serve(stream), open, moving, shared.clone(), index));
                    }
                    Err(e) => tracing::debug!(error = %e, "could not register a connection with its lane"),
                },
                Handoff::Moved { serving, open, moving } => {
                    tokio::spawn(drive(serving, open, moving, shared.clone(), index));
                }
            }
        }
    });
}

/// Serve a connection on this lane until it ends, or until its stream asks to move to another
/// lane; then hand the serving future over as it is (it was just polled to `Pending`, so it is at
/// an await point, exactly where a work-stealing runtime may move a task).
async fn drive(mut serving: Serving, mut open: Open, moving: Arc<AtomicUsize>, shared: Weak<Shared>, here: usize) {
    loop {
        let target = std::future::poll_fn(|cx| {
            if serving.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            match moving.swap(NONE, Ordering::Relaxed) {
                NONE => Poll::Pending,
                target if target == here => Poll::Pending,
                target => Poll::Ready(Some(target)),
            }
        })
        .await;
        let Some(target) = target else { return };
        let Some(shared) = shared.upgrade() else { continue };
        let (Some(lane), Some(next)) = (shared.lanes.get(target), shared.admit(target)) else { continue };
        let old = std::mem::replace(&mut open, next);
        match lane.handoffs.send(Handoff::Moved { serving, open, moving: moving.clone() }) {
            Ok(()) => {
                drop(old);
                return;
            }
            Err(mpsc::error::SendError(Handoff::Moved { serving: back, .. })) => {
                serving = back;
                open = old;
            }
            Err(_) => return,
        }
    }
}

/// A connection's socket: registered with the reactor of the lane serving it, and registered again
/// with the new lane's the first time it is used there after a move. Every [`SAMPLE_EVERY`] reads
/// it checks which CPU the client's packets arrive on and, when that is steadily another lane's
/// CPU and that lane may take it, asks to move there.
#[derive(Debug)]
pub struct LaneStream {
    io: Option<TcpStream>,
    /// The lane whose reactor `io` is registered with.
    bound: usize,
    moving: Arc<AtomicUsize>,
    shared: Weak<Shared>,
    reads: u32,
    streak: u32,
    moved_at: Option<Instant>,
}

impl LaneStream {
    fn new(io: TcpStream, bound: usize, moving: Arc<AtomicUsize>, shared: Weak<Shared>) -> Self {
        Self { io: Some(io), bound, moving, shared, reads: 0, streak: 0, moved_at: None }
    }

    /// The socket, registered with the current lane's reactor.
    fn io(&mut self) -> io::Result<&mut TcpStream> {
        let here = CURRENT_LANE.with(Cell::get);
        if here != NONE && here != self.bound {
            let io = self.io.take().ok_or_else(|| io::Error::other("connection lost in a move"))?;
            self.io = Some(TcpStream::from_std(io.into_std()?)?);
            self.bound = here;
            self.moved_at = Some(Instant::now());
        }
        self.io.as_mut().ok_or_else(|| io::Error::other("connection lost in a move"))
    }

    fn sample(&mut self) {
        self.reads = self.reads.wrapping_add(1);
        if !self.reads.is_multiple_of(SAMPLE_EVERY) || self.moved_at.is_some_and(|t| t.elapsed() < MOVE_INTERVAL) {
            return;
        }
        let (Some(shared), Some(io)) = (self.shared.upgrade(), self.io.as_ref()) else { return };
        let Some(cpu) = incoming_cpu(io) else { return };
        if shared.lanes.get(self.bound).is_some_and(|l| l.cpu == Some(cpu)) {
            self.streak = 0;
            return;
        }
        self.streak += 1;
        if self.streak >= MOVE_AFTER
            && let Some(target) = shared.local(Some(cpu))
        {
            self.streak = 0;
            self.moving.store(target, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for LaneStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(self.io()?).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.sample();
        }
        polled
    }
}

impl AsyncWrite for LaneStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(self.io()?).poll_write(cx, data)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(self.io()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io()?).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io()?).poll_shutdown(cx)
    }
}

/// Which lanes to start: one pinned lane per allowed CPU, or, when a CPU quota allows fewer CPUs'
/// worth of time than there are allowed CPUs, that many unpinned lanes.
#[cfg(target_os = "linux")]
fn placement() -> std::io::Result<Vec<Option<usize>>> {
    let allowed = rustix::thread::sched_getaffinity(None)?;
    let cpus: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU).filter(|&c| allowed.is_set(c)).collect();
    let usable = std::thread::available_parallelism().map_or(cpus.len(), |n| n.get());
    Ok(if usable >= cpus.len() { cpus.into_iter().map(Some).collect() } else { vec![None; usable] })
}

#[cfg(not(target_os = "linux"))]
fn placement() -> std::io::Result<Vec<Option<usize>>> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "connection lanes need Linux"))
}

#[cfg(target_os = "linux")]
fn pin_to(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        tracing::debug!(cpu, error = %e, "could not pin a connection lane to its CPU");
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to(_cpu: usize) {}

#[cfg(target_os = "linux")]
fn incoming_cpu(stream: &tokio::net::TcpStream) -> Option<usize> {
    rustix::net::sockopt::socket_incoming_cpu(stream).ok().and_then(|c| usize::try_from(c).ok())
}

#[cfg(not(target_os = "linux"))]
fn incoming_cpu(_stream: &tokio::net::TcpStream) -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(cpus: &[Option<usize>]) -> Shared {
        Shared {
            lanes: cpus
                .iter()
                .map(|&cpu| Lane { cpu, handoffs: mpsc::unbounded_channel().0, open: Arc::new(AtomicUsize::new(0)) })
                .collect(),
        }
    }

    /// Place a connection arriving on `cpu`; returns the chosen lane's CPU (its guard is leaked, so
    /// the connection stays counted).
    fn take(s: &Shared, cpu: Option<usize>) -> Option<usize> {
        let index = s.choose(cpu)?;
        std::mem::forget(s.admit(index));
        s.lanes[index].cpu
    }

    #[test]
    fn a_connection_goes_to_its_cpus_lane_until_that_lane_is_too_busy() {
        let s = shared(&[Some(0), Some(1)]);
        // Arriving on CPU 0: the first SLACK + 1 stay local, then the idle lane takes over.
        let got: Vec<_> = (0..6).map(|_| take(&s, Some(0))).collect();
        assert_eq!(got, vec![Some(0), Some(0), Some(0), Some(1), Some(0), Some(1)]);
        // Arrivals on both CPUs stay local.
        let s = shared(&[Some(0), Some(1)]);
        for i in 0..32 {
            assert_eq!(take(&s, Some(i % 2)), Some(i % 2));
        }
    }

    #[test]
    fn unknown_cpus_and_unpinned_lanes_go_to_the_least_busy() {
        let s = shared(&[Some(0), Some(1)]);
        let got: Vec<_> = (0..4).map(|_| take(&s, Some(7))).collect();
        assert_eq!(got.iter().filter(|c| **c == Some(0)).count(), 2);
        let s = shared(&[None, None, None]);
        for _ in 0..9 {
            take(&s, None);
        }
        assert!(s.lanes.iter().all(|lane| lane.open.load(Ordering::Relaxed) == 3));
    }

    #[test]
    fn an_ended_connection_frees_its_place() {
        let s = shared(&[Some(0), Some(1)]);
        let open = s.admit(1).expect("lane 1");
        assert_eq!(s.lanes[1].open.load(Ordering::Relaxed), 1);
        drop(open);
        assert_eq!(s.lanes[1].open.load(Ordering::Relaxed), 0);
        assert!(s.admit(2).is_none());
    }

    /// Pin the calling thread to `cpu`.
    fn pin(cpu: usize) {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        rustix::thread::sched_setaffinity(None, &set).expect("pin the client");
    }

    /// A client that moves to another CPU takes its connection with it: the connection is served by
    /// the lane of the client's CPU, then, after the client moves, by the other lane, and every
    /// answer along the way is right (the socket was registered again with the new lane's reactor).
    #[test]
    fn a_connection_follows_its_client_to_another_cpu_and_keeps_working() {
        use std::io::{Read, Write};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let lanes = Lanes::start().expect("lanes start on Linux");
        let cpus: Vec<usize> = lanes.0.lanes.iter().filter_map(|l| l.cpu).collect();
        if cpus.len() < 2 {
            eprintln!("skipped: needs two CPUs this process may pin to");
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepting = lanes.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let (stream, _) = listener.accept().expect("accept");
            stream.set_nonblocking(true).expect("nonblocking");
            runtime.block_on(async move {
                let stream = TcpStream::from_std(stream).expect("register");
                // Echo each byte plus one, followed by the index of the lane that served it.
                accepting.dispatch(stream, Box::new(|mut stream: LaneStream| {
                    Box::pin(async move {
                        let mut byte = [0u8; 1];
                        while stream.read_exact(&mut byte).await.is_ok() {
                            let lane = u8::try_from(CURRENT_LANE.with(Cell::get)).unwrap_or(u8::MAX);
                            if stream.write_all(&[byte[0].wrapping_add(1), lane]).await.is_err() {
                                return;
                            }
                        }
                    })
                }));
            });
        });
        let lane_of = |cpu: usize| lanes.0.lanes.iter().position(|l| l.cpu == Some(cpu)).expect("lane") as u8;
        let (first, second) = (cpus[0], cpus[1]);
        pin(first);
        let mut client = std::net::TcpStream::connect(addr).expect("connect");
        client.set_nodelay(true).expect("nodelay");
        let mut round = |n: u8| {
            client.write_all(&[n]).expect("send");
            let mut answer = [0u8; 2];
            client.read_exact(&mut answer).expect("answer");
            assert_eq!(answer[0], n.wrapping_add(1), "the echo is right");
            answer[1]
        };
        let served: Vec<u8> = (0..8).map(&mut round).collect();
        assert!(served.iter().all(|&l| l == lane_of(first)), "served on the client's lane: {served:?}");
        pin(second);
        let mut moved = false;
        for n in 0..200u8 {
            if round(n) == lane_of(second) {
                moved = true;
                break;
            }
        }
        assert!(moved, "the connection moved to the lane of the client's new CPU");
        for n in 0..20u8 {
            assert_eq!(round(n), lane_of(second), "and stays there");
        }
    }
}
