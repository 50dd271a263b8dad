import HTTPTypes
import HummingbirdCore
import NIOCore
import ShoalTracker

/// `GET /announce` and `GET /scrape` (BEP 3, 48) through the HTTP server core; anything else is 404.
/// The query is read as raw bytes (binary `info_hash`), never decoded as text first.
///
/// This is HummingbirdCore's HTTP/1 server with a responder of its own rather than Hummingbird's
/// `Application` and router: a tracker has two fixed paths and no middleware, and the application layer
/// (a logger with a request id, a request context, a date header per request) cost more CPU per
/// announce than the announce itself.
struct TrackerHTTPResponder: Sendable {
    let tracker: TrackerServer

    /// The answer's head and body for `request` from `remote`.
    func respond(to request: Request, from remote: SocketAddress?) -> (HTTPResponse, ResponseBody) {
        guard request.method == .get || request.method == .head else { return (HTTPResponse(status: .methodNotAllowed), ResponseBody()) }
        guard var target = request.head.path, let source = remote.flatMap(TrackerHost.init(socketAddress:)) else {
            return (HTTPResponse(status: .badRequest), ResponseBody())
        }
        let body: [UInt8]? = target.withUTF8 { utf8 in
            let questionMark = utf8.firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex
            let path = UnsafeBufferPointer(rebasing: utf8[..<questionMark])
            let query = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[min(questionMark + 1, utf8.endIndex)...]))
            if path.elementsEqual("/announce".utf8) { return tracker.handleAnnounce(query: query, from: source) }
            if path.elementsEqual("/scrape".utf8) { return tracker.handleScrape(query: query) }
            return nil
        }
        guard let body else { return (HTTPResponse(status: .notFound), ResponseBody()) }
        var head = HTTPResponse(status: .ok)
        head.headerFields[.contentType] = "text/plain"
        head.headerFields[.contentLength] = String(body.count)
        return (head, ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The server's child channel: HTTP/1 with this responder.
    var channel: HTTP1Channel {
        HTTP1Channel(responder: { request, writer, channel in
            let (head, body) = respond(to: request, from: channel.remoteAddress)
            try await writer.write(response: head, body: body)
        })
    }
}
