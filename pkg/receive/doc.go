// Package receive routes one accepted message: which address gets what.
// Mail to the directory's address runs through the inbound pipeline and
// then the mail commands (package mailcmd); mail to the list address
// through the pipeline and then the list relay (package relay); mail to
// LOCAL-sendkey@DOMAIN is answered, to anyone, with the directory's
// public key; mail for any other address is dropped.
//
// Both transports use it: ccdir serve (through package smtpd's Handler)
// and ccdir process (an MTA pipe). They differ only in how they report
// what became of a message, and both read it from the one error Receive
// returns: nil when the message was taken (handled, or dropped as a loop
// or as not ours), an *inbound.Refusal when it is refused, a *Deferred
// for a failure of ours. Each of these has an SMTPStatus (the reply at
// the end of DATA) and an ExitCode (0, or 75 so that the MTA retries);
// ExitCode(err) answers for any error.
//
// Every message leaves one line in the log: what was done, or why not.
// The package never prints otherwise.
package receive
