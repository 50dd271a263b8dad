import Hummingbird
import NIOCore
import ShoalTracker

/// Hummingbird's request context for the tracker: the client's address, which the announce needs.
struct TrackerRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// `GET /announce` and `GET /scrape` (BEP 3, 48) through the HTTP server core; anything else is 404.
/// The query is read as raw bytes (binary `info_hash`), never decoded as text first.
struct TrackerHTTPResponder: HTTPResponder {
    typealias Context = TrackerRequestContext
    let tracker: TrackerServer

    func respond(to request: Request, context: Context) async throws -> Response {
        guard request.method == .get || request.method == .head else { return Response(status: .methodNotAllowed) }
        guard var target = request.head.path, let source = context.remoteAddress.flatMap(TrackerHost.init(socketAddress:))
        else { return Response(status: .badRequest) }
        let body: [UInt8]? = target.withUTF8 { utf8 in
            let questionMark = utf8.firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex
            let path = UnsafeBufferPointer(rebasing: utf8[..<questionMark])
            let query = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[min(questionMark + 1, utf8.endIndex)...]))
            if path.elementsEqual("/announce".utf8) { return tracker.handleAnnounce(query: query, from: source) }
            if path.elementsEqual("/scrape".utf8) { return tracker.handleScrape(query: query) }
            return nil
        }
        guard let body else { return Response(status: .notFound) }
        return Response(
            status: .ok, headers: [.contentType: "text/plain"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
