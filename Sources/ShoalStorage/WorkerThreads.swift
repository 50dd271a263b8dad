#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs one body on several threads at once and waits for all of them: blocking CPU work (hashing) that
/// must not occupy Swift concurrency's cooperative pool.
enum WorkerThreads {
    /// The number of processors online.
    static var processorCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Calls `body(worker)` for each `worker` in `0..<count` on its own thread (worker 0 on the calling
    /// thread) and returns when all have returned. A thread the system refuses to create is skipped:
    /// callers share work dynamically, so fewer workers only means less parallelism.
    static func run(count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        var threads: [pthread_t] = []
        if count > 1 {
            for worker in 1..<count {
                let start = Unmanaged.passRetained(Start { body(worker) }).toOpaque()
                #if canImport(Darwin)
                var thread: pthread_t?
                let status = pthread_create(&thread, nil, { Start.enter($0) }, start)
                if status == 0, let thread {
                    threads.append(thread)
                } else {
                    Unmanaged<Start>.fromOpaque(start).release()
                }
                #else
                var thread = pthread_t()
                let status = pthread_create(&thread, nil, { Start.enter($0) }, start)
                if status == 0 {
                    threads.append(thread)
                } else {
                    Unmanaged<Start>.fromOpaque(start).release()
                }
                #endif
            }
        }
        body(0)
        for thread in threads {
            pthread_join(thread, nil)
        }
    }

    /// What a new thread runs, passed to it retained.
    private final class Start: Sendable {
        let body: @Sendable () -> Void

        init(_ body: @escaping @Sendable () -> Void) {
            self.body = body
        }

        static func enter(_ start: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
            guard let start else { return nil }
            Unmanaged<Start>.fromOpaque(start).takeRetainedValue().body()
            return nil
        }
    }
}
