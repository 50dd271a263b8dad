/// One peer connection's protocol logic, free of I/O: ``PeerConnection/StateMachine`` (in
/// `PeerConnection+StateMachine.swift`) and its ``PeerConnection/Configuration``.
public enum PeerConnection {
}
