"""LTP steps 2-3: the winning ticket, the top p of |theta_MLM - theta_0| over the maskable weights.

Reads the original backbone (theta_0) and its fine-tuned copy (theta_MLM, finetune_mlm's: masked
LM, causal LM or span corruption by family); maskable = the layers' attention and FFN weights and
biases of every family (xlprompt.methods.ltp; mT5: encoder blocks are layers 0..n-1, decoder blocks
follow). Writes (under --out)::

    mask.safetensors     one boolean mask per maskable parameter (True = in the ticket)
    ticket.json          the settings and "p% of what": maskable entries, selected, share,
                         share of all parameters, what the layer indices are
    ticket_share.csv     layer, module, entries, selected, share
    ticket_share.png     the share per layer and module

Example:
    python -m xlprompt select_ticket --backbone resources/models/tiny-xlmr-demo \
        --finetuned results/demo/mlm/tiny-xlmr-demo --out results/demo/tickets/tiny-xlmr-demo/p20 --sparsity 0.2
"""

from __future__ import annotations

import logging
from pathlib import Path

from xlprompt.methods.ltp import TicketConfig
from xlprompt.methods.ticket import write_ticket
from xlprompt.runtime.cli import add_dataclass_flags, dataclass_from_args, stage_parser, start

logger = logging.getLogger(__name__)


def build_parser():
    parser = stage_parser("select_ticket", __doc__)
    parser.add_argument("--backbone", required=True, type=Path, help="original model folder (theta_0)")
    parser.add_argument("--finetuned", required=True, type=Path, help="finetune_mlm's model folder (theta_MLM)")
    parser.add_argument("--out", required=True, type=Path)
    add_dataclass_flags(parser, TicketConfig)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    start(args)
    write_ticket(args.backbone, args.finetuned, args.out, dataclass_from_args(TicketConfig, args))
