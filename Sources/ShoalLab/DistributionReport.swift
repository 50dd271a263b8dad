import Foundation

/// What `shoal lab distribution` writes: its measurements next to the lecture's bounds as CSV (for other
/// tools), Markdown (to read), SVG (the lecture's plot, redrawn with the measurements on it) and, when a
/// converter is at hand, PNG.
///
/// Times are seconds in the CSV; the Markdown and the plot also give them in units of F/u, the time one peer
/// takes to upload the file, which is one hour in the lecture's example, so that they read like its figure.
public struct DistributionReport: Sendable, Hashable {
    /// One entry per swarm size, in increasing order of `peers`.
    public var measurements: [DistributionMeasurement]
    /// The parameters the bounds were computed from.
    public var bounds: DistributionBounds
    /// How many runs each swarm size was meant to get (a list may hold fewer when a run failed).
    public var runsPerSize: Int
    /// Free-form lines about the runs (run time, peak memory per simulated peer, the machine, …), shown
    /// under the Markdown's parameters and under the plot.
    public var notes: [String]

    public init(measurements: [DistributionMeasurement], bounds: DistributionBounds, runsPerSize: Int, notes: [String] = []) {
        self.measurements = measurements.sorted { $0.peers < $1.peers }
        self.bounds = bounds
        self.runsPerSize = runsPerSize
        self.notes = notes
    }

    /// F/u in seconds, the unit of the Markdown's second time column and of the plot's y axis; one second when
    /// peers do not upload (F/u would be infinite).
    public var timeUnit: Double {
        let unit = bounds.fileSize / bounds.peerUpload
        return unit.isFinite && unit > 0 ? unit : 1
    }

    /// The name of `timeUnit`: `F/u`, or `s` when that is what it is.
    var timeUnitName: String {
        timeUnit == bounds.fileSize / bounds.peerUpload ? "F/u" : "s"
    }

    /// The kinds of time measured for at least one swarm size, in the order of `MeasuredKind.allCases`.
    var measuredKinds: [MeasuredKind] {
        MeasuredKind.allCases.filter { kind in measurements.contains { !kind.times(in: $0).isEmpty } }
    }

    /// Whether the CSV and the Markdown show the smallest and greatest time of `kind`: when some swarm size
    /// has more than one run of it.
    func showsRange(of kind: MeasuredKind) -> Bool {
        measurements.contains { kind.times(in: $0).count > 1 }
    }

    /// The parameters in one line: F, u with F/u, u_s and d_min with their ratios to u, runs per swarm size.
    /// A value that is rounded is written with `≈` instead of `=`.
    public var parameterLine: String {
        let u = bounds.peerUpload
        func equation(_ name: String, _ value: String) -> String {
            value.hasPrefix("≈") ? "\(name) ≈ \(value.dropFirst())" : "\(name) = \(value)"
        }
        var parts = [equation("F", ReportFormatting.bytes(bounds.fileSize))]
        if u > 0 {
            parts.append(
                equation("u", ReportFormatting.rate(u)) + " (\(equation("F/u", ReportFormatting.duration(bounds.fileSize / u))))")
            parts.append(
                equation("u_s", ReportFormatting.rate(bounds.serverUpload))
                    + " (\(ReportFormatting.approximate(bounds.serverUpload / u, 3)) u)")
            parts.append(
                equation("d_min", ReportFormatting.rate(bounds.minDownload))
                    + " (\(ReportFormatting.approximate(bounds.minDownload / u, 3)) u)")
        } else {
            parts.append("u = 0 B/s")
            parts.append(equation("u_s", ReportFormatting.rate(bounds.serverUpload)))
            parts.append(equation("d_min", ReportFormatting.rate(bounds.minDownload)))
        }
        parts.append("\(runsPerSize) run\(runsPerSize == 1 ? "" : "s") per N")
        return parts.joined(separator: ", ")
    }

    // MARK: CSV

    /// One row per swarm size: peers; d_cs, the client-server mean and its ratio to d_cs; d_P2P, the P2P mean
    /// and its ratio; the real P2P mean and its ratio to d_P2P. After each measured kind with more than one
    /// run somewhere come its smallest and greatest time. Times in seconds to the millisecond, ratios to
    /// four decimals; a cell is empty when that kind was not measured for that size.
    public var csv: String {
        var header = ["peers"]
        for kind in MeasuredKind.allCases {
            if kind != .realPeerToPeer { header.append("\(kind.boundName) bound (s)") }
            header += ["\(kind.name) mean (s)", "\(kind.name) / \(kind.boundName)"]
            if showsRange(of: kind) { header += ["\(kind.name) min (s)", "\(kind.name) max (s)"] }
        }
        var text = CSVText.record(header)
        for measurement in measurements {
            var row = [String(measurement.peers)]
            for kind in MeasuredKind.allCases {
                if kind != .realPeerToPeer { row.append(ReportFormatting.fixed(kind.bound(in: measurement), 3)) }
                let times = kind.times(in: measurement)
                let mean = DistributionMeasurement.mean(times)
                row.append(mean.map { ReportFormatting.fixed($0, 3) } ?? "")
                row.append(mean.map { ReportFormatting.fixed($0 / kind.bound(in: measurement), 4) } ?? "")
                if showsRange(of: kind) {
                    row.append(times.min().map { ReportFormatting.fixed($0, 3) } ?? "")
                    row.append(times.max().map { ReportFormatting.fixed($0, 3) } ?? "")
                }
            }
            text += CSVText.record(row)
        }
        return text
    }

    // MARK: Markdown

    /// A heading, the parameter line, the notes as a list, and a table with one row per swarm size: the
    /// bounds and each measured kind's mean in seconds and in F/u, its ratio to its bound, and its smallest
    /// and greatest time when there were several runs. Kinds measured for no size are left out.
    public var markdown: String {
        var lines = ["# Distribution time: client-server vs. P2P", ""]
        lines.append("\(parameterLine). Times in seconds and in units of \(timeUnitName).")
        lines.append("")
        if !notes.isEmpty {
            lines += notes.map { "- " + $0.replacingOccurrences(of: "\n", with: " ") }
            lines.append("")
        }
        let kinds = measuredKinds
        var header = ["N", "d_cs"]
        var alignment = ["--:", "--:"]
        for kind in kinds where kind == .clientServer {
            header += [kind.name, "÷ d_cs"]
            alignment += ["--:", "--:"]
        }
        header.append("d_P2P")
        alignment.append("--:")
        for kind in kinds where kind != .clientServer {
            header += [kind.name, "÷ d_P2P"]
            alignment += ["--:", "--:"]
        }
        lines.append("| " + header.joined(separator: " | ") + " |")
        lines.append("|" + alignment.joined(separator: "|") + "|")
        for measurement in measurements {
            var cells = [String(measurement.peers), time(measurement.clientServerBound)]
            for kind in kinds where kind == .clientServer { cells += measuredCells(kind, measurement) }
            cells.append(time(measurement.peerToPeerBound))
            for kind in kinds where kind != .clientServer { cells += measuredCells(kind, measurement) }
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        if kinds.count < MeasuredKind.allCases.count {
            let missing = MeasuredKind.allCases.filter { !kinds.contains($0) }.map(\.name)
            lines.append("")
            lines.append("Not measured: \(missing.joined(separator: ", ")).")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A time as the Markdown shows it: `3708.12 s (1.030 F/u)`.
    func time(_ seconds: Double) -> String {
        let inUnit = timeUnitName == "s" ? "" : " (\(ReportFormatting.fixed(seconds / timeUnit, 3)) \(timeUnitName))"
        return "\(ReportFormatting.fixed(seconds, 2)) s" + inUnit
    }

    /// The mean cell (with the range of several runs) and the ratio cell of one kind; `–` when not measured.
    private func measuredCells(_ kind: MeasuredKind, _ measurement: DistributionMeasurement) -> [String] {
        let times = kind.times(in: measurement)
        guard let mean = DistributionMeasurement.mean(times), let low = times.min(), let high = times.max() else {
            return ["–", "–"]
        }
        var cell = time(mean)
        if times.count > 1 {
            cell += ", \(times.count) runs: \(ReportFormatting.fixed(low, 2))–\(ReportFormatting.fixed(high, 2)) s"
        }
        return [cell, ReportFormatting.fixed(mean / kind.bound(in: measurement), 3)]
    }
}
