namespace Naani.Serving;

/// A request the client must fix (400), with a message that says what is wrong.
public sealed class BadRequestException(string message) : Exception(message);
