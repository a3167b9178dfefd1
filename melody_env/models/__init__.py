"""The Note RNN (reward RNN and prior policy)."""

from melody_env.models.note_rnn import DEFAULT_CHECKPOINT, LSTMState, NoteRNN, NoteRNNConfig

__all__ = ["DEFAULT_CHECKPOINT", "LSTMState", "NoteRNN", "NoteRNNConfig"]
