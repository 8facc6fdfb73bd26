//! B3 — TCP echo ping-pong: Tina (io_uring and epoll) next to tokio current-thread and monoio.
//!
//! ```text
//! cargo run --release -p tina-bench --bin b3_tcp            # 5 rounds × 10 s, 1/16/64/256 conns
//! cargo run --release -p tina-bench --bin b3_tcp -- --quick # harness check for CI (not a measurement)
//! ```
//!
//! Each server runs in its own child process pinned to CPU 0; the load generator (this
//! process, one thread, io_uring) is pinned to CPU 1. Every connection sends a request of
//! `--size` bytes (default 1024) and waits for the whole echo before the next (closed loop).
//! Systems run interleaved (A B C D A B C D …); per round the harness reads the server's
//! `utime + stime` from `/proc/<pid>/stat` over the measured window and reports server CPU
//! per request (primary), requests per second, and per-round ratios Tina/peer (median and
//! range). A round whose client thread used over 95% of its core is marked client-bound.
//!
//! `--rate R --conns C` switches to latency at a fixed offered rate: request `k` is scheduled
//! at `k / R` seconds and goes out on connection `k mod C` (queued behind that connection's
//! outstanding request if needed); latency is measured from the **scheduled** time, so a slow
//! server cannot hide its queueing (no coordinated omission). Reports p50/p99/p99.9.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use io_uring::{IoUring, opcode, types};

const SYSTEMS: [&str; 4] = ["tina-uring", "tina-epoll", "tokio", "monoio"];
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

struct Options {
    rounds: usize,
    warmup: StdDuration,
    measure: StdDuration,
    conns: Vec<usize>,
    size: usize,
    /// Open-loop latency mode: requests per second offered (0: closed-loop throughput mode).
    rate: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let system = args.get(1).cloned().unwrap_or_default();
        let port: u16 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
        serve(&system, port);
        return;
    }
    let mut o = Options {
        rounds: 5,
        warmup: StdDuration::from_secs(2),
        measure: StdDuration::from_secs(10),
        conns: vec![1, 16, 64, 256],
        size: 1024,
        rate: 0,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_default();
        match a.as_str() {
            "--quick" => {
                o.rounds = 1;
                o.warmup = StdDuration::from_millis(200);
                o.measure = StdDuration::from_millis(500);
                o.conns = vec![16];
            }
            "--rounds" => o.rounds = val().parse().expect("--rounds N"),
            "--seconds" => o.measure = StdDuration::from_secs_f64(val().parse().expect("secs")),
            "--warmup" => o.warmup = StdDuration::from_secs_f64(val().parse().expect("secs")),
            "--size" => o.size = val().parse().expect("--size BYTES"),
            "--rate" => o.rate = val().parse().expect("--rate REQUESTS_PER_SECOND"),
            "--conns" => {
                o.conns = val()
                    .split(',')
                    .map(|c| c.parse().expect("--conns 1,16,64"))
                    .collect()
            }
            "all" => {}
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    if o.rate > 0 {
        latency_bench(&o);
    } else {
        bench(&o);
    }
}

// ───────────────────────────── servers ─────────────────────────────

fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_SET/sched_setaffinity get a valid set for `cpu`.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn serve(system: &str, port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // The harness pinned itself (and so this child) to the client's CPU: move to the server's.
    pin(SERVER_CPU);
    match system {
        "tina-uring" | "tina-epoll" => serve_tina(addr, system == "tina-uring"),
        "tokio" => serve_tokio(addr),
        "monoio" => serve_monoio(addr),
        _ => {
            eprintln!("unknown system {system}");
            std::process::exit(2);
        }
    }
}

fn serve_tina(addr: SocketAddr, uring: bool) {
    use tina_core::{ChildSpec, GroupSpec, Restart, ShardConfig, ShardSpec, SystemSpec, TypeSpec};
    use tina_examples::echo::{Connection, ListenArgs, Listener};
    let connections = 512;
    let types = [
        TypeSpec::of::<Listener>("listener"),
        TypeSpec::of::<Connection>("connection").capacity(connections),
    ];
    let children = [ChildSpec::isolate::<Listener>(
        &ListenArgs::new(addr, 1024),
        Restart::Permanent,
    )];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(connections),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard = ShardConfig {
        io_buffer_count: connections + 64,
        io_buffer_size: 16 * 1024,
        io_submissions_per_tick_max: connections + 64,
        ..ShardConfig::DEFAULT
    };
    let config = tina_linux::Config {
        backend: if uring {
            tina_linux::Backend::Uring
        } else {
            tina_linux::Backend::Epoll
        },
        cpus: Some(vec![SERVER_CPU]),
        announce: false,
        log_level: tina_core::log::Level::Warn,
        ..tina_linux::Config::default()
    };
    let _ = tina_linux::run(&spec, &config, &tina_linux::Control::new());
}

fn serve_tokio(addr: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    pin(SERVER_CPU);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

fn serve_monoio(addr: SocketAddr) {
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
    pin(SERVER_CPU);
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(1024)
        .build()
        .expect("monoio runtime");
    rt.block_on(async move {
        let listener = monoio::net::TcpListener::bind(addr).expect("bind");
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            monoio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let (r, b) = s.read(buf).await;
                    buf = b;
                    let n = match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let (r, b) = s.write_all(buf.slice_mut_prefix(n)).await;
                    buf = b.into_inner();
                    if r.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

trait SlicePrefix {
    fn slice_mut_prefix(self, n: usize) -> monoio::buf::SliceMut<Vec<u8>>;
}

impl SlicePrefix for Vec<u8> {
    fn slice_mut_prefix(self, n: usize) -> monoio::buf::SliceMut<Vec<u8>> {
        monoio::buf::IoBufMut::slice_mut(self, 0..n)
    }
}

// ───────────────────────────── the load generator ─────────────────────────────

fn cpu_ticks_of(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as f64 } else { 100.0 }
}

fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

struct Sample {
    req_per_s: f64,
    server_us_per_req: f64,
    client_cpu: f64,
}

fn start_server(system: &str) -> (Child, SocketAddr) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--serve", system, &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn server");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = StdInstant::now() + StdDuration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(StdInstant::now() < deadline, "{system} did not start");
        std::thread::sleep(StdDuration::from_millis(20));
    }
    (child, addr)
}

fn stop_server(mut child: Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = StdInstant::now() + StdDuration::from_secs(5);
    while StdInstant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(StdDuration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs the closed-loop ping-pong on `conns` connections; returns one sample.
fn load(addr: SocketAddr, server_pid: u32, conns: usize, o: &Options) -> Sample {
    let streams: Vec<TcpStream> = (0..conns)
        .map(|_| {
            let s = TcpStream::connect(addr).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            s
        })
        .collect();
    let size = o.size;
    let request = vec![0x5Au8; size];
    let mut bufs = vec![0u8; size * conns];
    let mut got = vec![0usize; conns];
    let mut sent = vec![0usize; conns];
    let mut ring: IoUring =
        IoUring::new((conns * 2).next_power_of_two().max(8) as u32).expect("ring");
    let send = |ring: &mut IoUring, i: usize, from: usize, streams: &[TcpStream]| {
        let e = opcode::Send::new(
            types::Fd(streams[i].as_raw_fd()),
            request[from..].as_ptr(),
            (size - from) as u32,
        )
        .build()
        .user_data((i as u64) << 1);
        // SAFETY: `request` outlives the ring's use of it (both live until `load` returns and
        // every operation is reaped or the sockets are closed first).
        unsafe { ring.submission().push(&e).expect("sq room") };
    };
    for i in 0..conns {
        send(&mut ring, i, 0, &streams);
    }
    let start = StdInstant::now();
    let warm_end = start + o.warmup;
    let end = warm_end + o.measure;
    let mut count = 0u64;
    let mut measuring = false;
    let (mut count0, mut cpu0, mut client0, mut t0) = (0, 0, 0.0, start);
    loop {
        ring.submit_and_wait(1).expect("enter");
        let now = StdInstant::now();
        if !measuring && now >= warm_end {
            measuring = true;
            count0 = count;
            cpu0 = cpu_ticks_of(server_pid);
            client0 = thread_cpu_s();
            t0 = now;
        }
        if now >= end {
            let elapsed = now.duration_since(t0).as_secs_f64();
            let reqs = (count - count0) as f64;
            let server_s = (cpu_ticks_of(server_pid) - cpu0) as f64 / clk_tck();
            return Sample {
                req_per_s: reqs / elapsed,
                server_us_per_req: server_s * 1e6 / reqs.max(1.0),
                client_cpu: (thread_cpu_s() - client0) / elapsed,
            };
        }
        let cqes: Vec<(u64, i32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (ud, res) in cqes {
            let i = (ud >> 1) as usize;
            assert!(res > 0, "connection {i} failed: {res}");
            let n = res as usize;
            if ud & 1 == 0 {
                sent[i] += n;
                if sent[i] < size {
                    send(&mut ring, i, sent[i], &streams);
                    continue;
                }
                sent[i] = 0;
            } else {
                got[i] += n;
                if got[i] >= size {
                    got[i] = 0;
                    count += 1;
                    send(&mut ring, i, 0, &streams);
                    continue;
                }
            }
            let buf = &mut bufs[i * size + got[i]..(i + 1) * size];
            let e = opcode::Recv::new(
                types::Fd(streams[i].as_raw_fd()),
                buf.as_mut_ptr(),
                buf.len() as u32,
            )
            .build()
            .user_data(((i as u64) << 1) | 1);
            // SAFETY: `bufs` outlives the ring's use of it (see the send above).
            unsafe { ring.submission().push(&e).expect("sq room") };
        }
    }
}

/// Latency at a fixed offered rate; returns (p50, p99, p99.9) in µs and the server's CPU
/// µs per request.
fn load_at_rate(addr: SocketAddr, server_pid: u32, conns: usize, o: &Options) -> [f64; 4] {
    let streams: Vec<TcpStream> = (0..conns)
        .map(|_| {
            let s = TcpStream::connect(addr).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            s
        })
        .collect();
    let size = o.size;
    let request = vec![0x5Au8; size];
    let mut bufs = vec![0u8; size * conns];
    let mut got = vec![0usize; conns];
    let mut sent = vec![0usize; conns];
    // Per connection: scheduled times of requests not yet answered (front: in flight).
    let mut queue: Vec<std::collections::VecDeque<u64>> = (0..conns)
        .map(|_| std::collections::VecDeque::new())
        .collect();
    let mut ring: IoUring =
        IoUring::new((conns * 2).next_power_of_two().max(8) as u32).expect("ring");
    let push = |ring: &mut IoUring, e: io_uring::squeue::Entry| {
        // SAFETY: every buffer the entries point to (`request`, `bufs`) outlives the ring's
        // use of them: they live until this function returns, after the last reap.
        while unsafe { ring.submission().push(&e) }.is_err() {
            ring.submit().expect("submit");
        }
    };
    let send = |ring: &mut IoUring, i: usize, from: usize| {
        let e = opcode::Send::new(
            types::Fd(streams[i].as_raw_fd()),
            request[from..].as_ptr(),
            (size - from) as u32,
        )
        .build()
        .user_data((i as u64) << 1);
        push(ring, e);
    };
    let start = StdInstant::now();
    let ns = |t: StdInstant| t.duration_since(start).as_nanos() as u64;
    let period_ns = 1_000_000_000 / o.rate.max(1);
    let warm_ns = o.warmup.as_nanos() as u64;
    let end_ns = warm_ns + o.measure.as_nanos() as u64;
    let mut next_k = 0u64;
    let mut latencies: Vec<u64> = Vec::with_capacity((o.rate as usize) * 12);
    let (mut cpu0, mut done0, mut done) = (0u64, 0u64, 0u64);
    let mut measuring = false;
    loop {
        let now = ns(StdInstant::now());
        if !measuring && now >= warm_ns {
            measuring = true;
            cpu0 = cpu_ticks_of(server_pid);
            done0 = done;
        }
        if now >= end_ns {
            break;
        }
        while next_k * period_ns <= now {
            let i = (next_k % conns as u64) as usize;
            queue[i].push_back(next_k * period_ns);
            if queue[i].len() == 1 {
                send(&mut ring, i, 0);
            }
            next_k += 1;
        }
        let wait = (next_k * period_ns).saturating_sub(ns(StdInstant::now()));
        let ts = types::Timespec::new()
            .sec(wait / 1_000_000_000)
            .nsec((wait % 1_000_000_000) as u32);
        let args = types::SubmitArgs::new().timespec(&ts);
        let _ = ring.submitter().submit_with_args(1, &args);
        let cqes: Vec<(u64, i32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (ud, res) in cqes {
            let i = (ud >> 1) as usize;
            assert!(res > 0, "connection {i} failed: {res}");
            let n = res as usize;
            if ud & 1 == 0 {
                sent[i] += n;
                if sent[i] < size {
                    send(&mut ring, i, sent[i]);
                    continue;
                }
                sent[i] = 0;
            } else {
                got[i] += n;
                if got[i] >= size {
                    got[i] = 0;
                    let scheduled = queue[i].pop_front().expect("a request in flight");
                    done += 1;
                    if measuring && scheduled >= warm_ns {
                        latencies.push(ns(StdInstant::now()) - scheduled);
                    }
                    if !queue[i].is_empty() {
                        send(&mut ring, i, 0);
                    }
                    continue;
                }
            }
            let buf = &mut bufs[i * size + got[i]..(i + 1) * size];
            let e = opcode::Recv::new(
                types::Fd(streams[i].as_raw_fd()),
                buf.as_mut_ptr(),
                buf.len() as u32,
            )
            .build()
            .user_data(((i as u64) << 1) | 1);
            push(&mut ring, e);
        }
    }
    let server_s = (cpu_ticks_of(server_pid) - cpu0) as f64 / clk_tck();
    // Requests still queued at the end count at their current age (they are the tail).
    let now = ns(StdInstant::now());
    for q in &queue {
        latencies.extend(q.iter().filter(|&&t| t >= warm_ns).map(|&t| now - t));
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        let k = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(k).copied().unwrap_or(0) as f64 / 1000.0
    };
    [
        pct(0.50),
        pct(0.99),
        pct(0.999),
        server_s * 1e6 / (done - done0).max(1) as f64,
    ]
}

fn latency_bench(o: &Options) {
    pin(CLIENT_CPU);
    let conns = o.conns.first().copied().unwrap_or(64);
    println!(
        "B3 latency at a fixed offered rate: {} req/s of {} B over {conns} connection(s), \
         measured from the scheduled send time; server on CPU {SERVER_CPU}, load generator on \
         CPU {CLIENT_CPU}; {} round(s) × {:.1} s after {:.1} s warm-up, systems interleaved",
        o.rate,
        o.size,
        o.rounds,
        o.measure.as_secs_f64(),
        o.warmup.as_secs_f64()
    );
    let mut samples: Vec<Vec<[f64; 4]>> = SYSTEMS.iter().map(|_| Vec::new()).collect();
    for _ in 0..o.rounds {
        for (k, system) in SYSTEMS.iter().enumerate() {
            let (child, addr) = start_server(system);
            samples[k].push(load_at_rate(addr, child.id(), conns, o));
            stop_server(child);
        }
    }
    println!(
        "{:<11} {:>22} {:>22} {:>24} {:>14}",
        "system", "p50 µs [min–max]", "p99 µs [min–max]", "p99.9 µs [min–max]", "server µs/req"
    );
    for (k, system) in SYSTEMS.iter().enumerate() {
        let mut cols = Vec::new();
        for q in 0..4 {
            let mut v: Vec<f64> = samples[k].iter().map(|s| s[q]).collect();
            let (lo, hi) = range(&v);
            cols.push((median(&mut v), lo, hi));
        }
        println!(
            "{system:<11} {:>8.0} [{:>5.0}–{:>6.0}] {:>8.0} [{:>5.0}–{:>6.0}] {:>9.0} [{:>5.0}–{:>7.0}] {:>14.2}",
            cols[0].0,
            cols[0].1,
            cols[0].2,
            cols[1].0,
            cols[1].1,
            cols[1].2,
            cols[2].0,
            cols[2].1,
            cols[2].2,
            cols[3].0
        );
    }
    for (t, tina) in ["tina-uring", "tina-epoll"].iter().enumerate() {
        for (p, peer) in SYSTEMS.iter().enumerate().skip(2) {
            let mut r: Vec<f64> = (0..o.rounds)
                .map(|i| samples[t][i][1] / samples[p][i][1])
                .collect();
            let (lo, hi) = range(&r);
            println!(
                "  {tina}/{peer}: p99 ×{:.2} [{lo:.2}–{hi:.2}]",
                median(&mut r)
            );
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

fn bench(o: &Options) {
    pin(CLIENT_CPU);
    println!(
        "B3 TCP echo ping-pong, {} B requests, closed loop; server on CPU {SERVER_CPU}, load \
         generator (1 thread, io_uring) on CPU {CLIENT_CPU}; {} round(s) × {:.1} s after {:.1} s \
         warm-up, systems interleaved",
        o.size,
        o.rounds,
        o.measure.as_secs_f64(),
        o.warmup.as_secs_f64()
    );
    for &conns in &o.conns {
        // samples[system][round]
        let mut samples: Vec<Vec<Sample>> = SYSTEMS.iter().map(|_| Vec::new()).collect();
        for _ in 0..o.rounds {
            for (k, system) in SYSTEMS.iter().enumerate() {
                let (child, addr) = start_server(system);
                let s = load(addr, child.id(), conns, o);
                stop_server(child);
                samples[k].push(s);
            }
        }
        println!(
            "\n{conns} connection(s)\n{:<11} {:>24} {:>30} {:>8}",
            "system", "req/s median [min–max]", "server µs/req median [min–max]", "client"
        );
        for (k, system) in SYSTEMS.iter().enumerate() {
            let mut rps: Vec<f64> = samples[k].iter().map(|s| s.req_per_s).collect();
            let mut cpu: Vec<f64> = samples[k].iter().map(|s| s.server_us_per_req).collect();
            let (rlo, rhi) = range(&rps);
            let (clo, chi) = range(&cpu);
            let client_max = samples[k].iter().map(|s| s.client_cpu).fold(0.0, f64::max);
            println!(
                "{system:<11} {:>9.0} [{:>6.0}–{:>6.0}] {:>12.2} [{:>5.2}–{:>5.2}] {:>7.0}%{}",
                median(&mut rps),
                rlo,
                rhi,
                median(&mut cpu),
                clo,
                chi,
                client_max * 100.0,
                if client_max > 0.95 {
                    " client-bound"
                } else {
                    ""
                }
            );
        }
        for (t, tina) in ["tina-uring", "tina-epoll"].iter().enumerate() {
            for (p, peer) in SYSTEMS.iter().enumerate().skip(2) {
                let mut cpu_ratio: Vec<f64> = (0..o.rounds)
                    .map(|r| samples[t][r].server_us_per_req / samples[p][r].server_us_per_req)
                    .collect();
                let mut rps_ratio: Vec<f64> = (0..o.rounds)
                    .map(|r| samples[t][r].req_per_s / samples[p][r].req_per_s)
                    .collect();
                let (clo, chi) = range(&cpu_ratio);
                let (rlo, rhi) = range(&rps_ratio);
                println!(
                    "  {tina}/{peer}: server CPU per request ×{:.2} [{clo:.2}–{chi:.2}], req/s \
                     ×{:.2} [{rlo:.2}–{rhi:.2}]",
                    median(&mut cpu_ratio),
                    median(&mut rps_ratio)
                );
            }
        }
        let _ = std::io::stdout().flush();
    }
}
