import ShoalBencode
import ShoalCore

/// A swarm's counts as a scrape gives them (BEP 48 over HTTP, BEP 15 over UDP).
public struct ScrapeCounts: Hashable, Sendable {
    /// Peers with the whole torrent (`complete`).
    public var seeders: Int64
    /// Completed downloads the tracker has seen (`downloaded`).
    public var completed: Int64
    /// Peers still downloading (`incomplete`).
    public var leechers: Int64

    public init(seeders: Int64, completed: Int64, leechers: Int64) {
        self.seeders = seeders
        self.completed = completed
        self.leechers = leechers
    }
}

/// A tracker's answer to a scrape: counts per info-hash (BEP 48 `files`).
public struct ScrapeResponse: Hashable, Sendable {
    public var files: [Bytes20: ScrapeCounts]
    /// BEP 48 `flags`/`min_request_interval`, seconds.
    public var minRequestInterval: Int64?

    public init(files: [Bytes20: ScrapeCounts] = [:], minRequestInterval: Int64? = nil) {
        self.files = files
        self.minRequestInterval = minRequestInterval
    }

    /// The most torrents read from one answer.
    public static let maxFiles = 10_000

    /// Reads a bencoded BEP 48 answer; a `failure reason` throws ``TrackerError/Code/refused(_:retryIn:)``.
    /// Entries whose key is not a 20-byte info-hash are skipped; counts must be non-negative integers.
    public init(http bytes: [UInt8], limits: AnnounceResponse.Limits = .init()) throws(TrackerError) {
        let root = try AnnounceResponse.dictionary(bytes, limits: limits)
        self.init()
        if let flags = root["flags"], flags.kind == .dictionary {
            minRequestInterval = try AnnounceResponse.integer(flags, "min_request_interval", minimum: 0)
        }
        guard let node = root["files"] else { throw TrackerError(.missingField("files")) }
        guard let entries = node.entries else {
            throw TrackerError(.invalidField("files", reason: "is not a dictionary"), at: node.span.lowerBound)
        }
        for (key, value) in entries.prefix(Self.maxFiles) {
            guard let hash = key.bytes.flatMap(Bytes20.init(bytes:)) else { continue }
            guard value.kind == .dictionary else {
                throw TrackerError(.invalidField("files", reason: "has an entry that is not a dictionary"), at: value.span.lowerBound)
            }
            files[hash] = ScrapeCounts(
                seeders: try AnnounceResponse.integer(value, "complete", minimum: 0) ?? 0,
                completed: try AnnounceResponse.integer(value, "downloaded", minimum: 0) ?? 0,
                leechers: try AnnounceResponse.integer(value, "incomplete", minimum: 0) ?? 0)
        }
    }

    /// The canonical bencoding (what Shoal's tracker sends).
    public var http: [UInt8] {
        var output: [UInt8] = []
        TrackerBencode.writeScrape(
            files.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, minRequestInterval: minRequestInterval, into: &output)
        return output
    }
}
