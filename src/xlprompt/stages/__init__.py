"""Command-line stages: one module per workflow rule, run as ``python -m xlprompt <stage> ...``.

Every stage has the same shape, on purpose: ``build_parser()`` (an argparse CLI whose help shows an example call
and the files it writes), then ``main(argv)``: parse, :func:`xlprompt.runtime.cli.start`, call one library
function, write what it returns (or the function writes its outputs itself: training, tickets, backbones,
figures). The ``duplicates`` tool reports that shared shape (a parser's last flags, ``return parser``,
``args = build_parser().parse_args(argv)``, ``start(args)``); it stays written out in each stage so that a stage
reads top to bottom like the command the rule prints.
"""
