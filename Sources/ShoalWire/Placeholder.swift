/// The peer wire protocol (BEP 3, 6, 10): placeholder until the first messages land.
enum ShoalWirePlaceholder {}
