//! Unit tests of the scanner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod basics {
    use super::super::*;
    use pretty_assertions::assert_eq;

    const LOG: &str = "\
2026-06-23T11:00:00Z INFO starting server on :8080
2026-06-23T11:00:01Z INFO loaded model llama-3-8b
2026-06-23T11:00:02Z ERROR connect to 10.0.3.17:5432 failed after 3 retries id=7f9c2a1e
2026-06-23T11:00:03Z ERROR connect to 10.0.3.18:5432 failed after 5 retries id=8a1b2c3d
2026-06-23T11:00:04Z Traceback (most recent call last):
2026-06-23T11:00:04Z   File \"/app/main.py\", line 12, in <module>
2026-06-23T11:00:04Z     serve()
2026-06-23T11:00:04Z   File \"/app/server.py\", line 40, in serve
2026-06-23T11:00:04Z     torch.cuda.init()
2026-06-23T11:00:04Z RuntimeError: CUDA error: an illegal memory access was encountered
2026-06-23T11:00:05Z INFO retrying
2026-06-23T11:00:06Z panic: runtime error: invalid memory address or nil pointer dereference
2026-06-23T11:00:06Z [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a2b]
2026-06-23T11:00:06Z 
2026-06-23T11:00:06Z goroutine 1 [running]:
2026-06-23T11:00:06Z main.handler(0xc000010000)
2026-06-23T11:00:06Z \t/app/main.go:42 +0x1d
2026-06-23T11:00:06Z main.main()
2026-06-23T11:00:06Z \t/app/main.go:10 +0x25
2026-06-23T11:00:07Z java.lang.IllegalStateException: pool exhausted
2026-06-23T11:00:07Z \tat com.acme.Pool.get(Pool.java:88)
2026-06-23T11:00:07Z \tat com.acme.Api.handle(Api.java:12)
2026-06-23T11:00:07Z Caused by: java.net.ConnectException: Connection refused
2026-06-23T11:00:07Z \t... 4 more
2026-06-23T11:00:08Z INFO password=hunter2 done
";

    fn run(chunk: usize, opts: ScanOptions) -> LogScan {
        let mut s = LogScanner::new(opts);
        for c in LOG.as_bytes().chunks(chunk) {
            s.feed(c);
        }
        s.finish()
    }

    #[test]
    fn clusters_traces_and_context_independent_of_chunking() {
        let whole = run(1 << 20, ScanOptions::with_grep("retr").unwrap());
        for chunk in [1, 7, 64] {
            assert_eq!(
                run(chunk, ScanOptions::with_grep("retr").unwrap()),
                whole,
                "chunk {chunk}"
            );
        }
        assert_eq!(whole.lines, 25);
        assert_eq!(whole.first_ts.as_deref(), Some("2026-06-23T11:00:00Z"));
        assert_eq!(whole.last_ts.as_deref(), Some("2026-06-23T11:00:08Z"));
        assert_eq!(whole.grep_count, 3);
        assert_eq!(whole.matches[2].line, 11);
        assert_eq!(whole.clusters[0].count, 2);
        assert_eq!(
            whole.clusters[0].template,
            "ERROR connect to <ip>:<n> failed after <n> retries id=<hex>"
        );
        assert_eq!(whole.clusters[0].first_line, 3);
        assert_eq!(
            whole.clusters[0].last_ts.as_deref(),
            Some("2026-06-23T11:00:03Z")
        );
        let kinds: Vec<TraceKind> = whole.traces.iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            vec![TraceKind::Python, TraceKind::Go, TraceKind::Java]
        );
        let py = &whole.traces[0];
        assert_eq!(
            py.exception,
            "RuntimeError: CUDA error: an illegal memory access was encountered"
        );
        assert_eq!((py.first_line, py.last_line), (5, 10));
        assert_eq!(py.top_frames.len(), 2);
        let go = &whole.traces[1];
        assert_eq!((go.first_line, go.last_line), (12, 19));
        assert!(go.top_frames[0].starts_with("main.handler"));
        let java = &whole.traces[2];
        assert!(
            java.exception
                .contains("Caused by: java.net.ConnectException"),
            "{}",
            java.exception
        );
        assert_eq!((java.first_line, java.last_line), (20, 24));
        let fe = whole.first_error.as_ref().unwrap();
        assert_eq!(fe.error.line, 3);
        assert_eq!(
            fe.before.iter().map(|l| l.line).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(
            fe.after.iter().map(|l| l.line).collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
        assert_eq!(whole.error_lines, 5);
    }

    #[test]
    fn kept_lines_are_redacted() {
        let s = run(1 << 20, ScanOptions::with_grep("password").unwrap());
        assert_eq!(
            s.matches[0].text,
            "INFO password=<redacted:credential> done"
        );
    }

    #[test]
    fn newline_count_matches_naive() {
        let data: Vec<u8> = (0..10_000u32)
            .map(|i| if i % 7 == 0 { b'\n' } else { (i % 251) as u8 })
            .collect();
        for end in [0, 1, 9, 100, 9_999] {
            let naive = data[..end].iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(count_newlines(&data[..end]), naive);
        }
    }

    #[test]
    fn templates_mask_variables() {
        assert_eq!(
            template(b"user 3fa85f64-5717-4562-b3fc-2c963f66afa6 at 0xdeadbeef took 35ms \"bob\""),
            "user <uuid> at <hex> took <n> \"…\""
        );
        assert_eq!(
            template(b"GET /api/v1/users/42 pod web-7d9f8c-x2x4z"),
            "GET /api/v1/users/<n> pod <id>"
        );
    }
}

mod prefixed {
    use super::super::*;

    #[test]
    fn folds_a_traceback_written_through_a_logger() {
        let log = "\
ERROR 06-23 11:53:20 [core.py:400] EngineCore failed to start.
ERROR 06-23 11:53:20 [core.py:400] Traceback (most recent call last):
ERROR 06-23 11:53:20 [core.py:400]   File \"/x/core.py\", line 391, in run_engine_core
ERROR 06-23 11:53:20 [core.py:400]     engine_core = EngineCoreProc(*args, **kwargs)
ERROR 06-23 11:53:21 [core.py:400]   File \"/x/worker.py\", line 12, in load_model
ERROR 06-23 11:53:21 [core.py:400]     torch.cuda.synchronize()
ERROR 06-23 11:53:21 [core.py:400] RuntimeError: CUDA error: unspecified launch failure
INFO 06-23 11:53:22 [api.py:1] shutting down
";
        let s = scan(log.as_bytes(), ScanOptions::default()).unwrap();
        assert_eq!(s.traces.len(), 1, "{s:#?}");
        assert_eq!(
            s.traces[0].exception,
            "RuntimeError: CUDA error: unspecified launch failure"
        );
        assert_eq!((s.traces[0].first_line, s.traces[0].last_line), (2, 7));
        assert_eq!(s.clusters.len(), 1);
    }
}
