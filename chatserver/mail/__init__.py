"""E-mail out and in (docs/email.md).

=================  ==========================================================
module             holds
=================  ==========================================================
``service.py``     ``MailService`` (``node.mail``): the listener of events
``settings.py``    SMTP settings: the site's (console) or the server's (CLI)
``message.py``     ``Mail`` (what a queue holds) and its MIME form
``queue.py``       ``MailQueue``: the seam the durable outbox takes over
``send.py``        one SMTP attempt: ``MailRetry`` / ``MailRejected``
``render.py``      text and HTML from ``templates/``, in en/ca/es
``notify.py``      mails to agents: offline messages, unanswered chats
``visitor.py``     mails to visitors: answers, transcripts, unsubscribing
``transcript.py``  the ``transcript`` frame
``reference.py``   signed conversation references
``inbound.py``     a visitor's answer by e-mail back into the conversation
``quotes.py``      the answer's own text, without the quoted history
``web.py``         ``/mail/inbound`` and ``/mail/unsubscribe``
=================  ==========================================================
"""
