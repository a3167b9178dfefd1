"""Compose a melody with a random policy, print it as a piano roll and save it as MIDI."""

import gymnasium as gym

import melody_env  # noqa: F401  (registers melody_env/MelodyComposition-v0)

env = gym.make("melody_env/MelodyComposition-v0", key="G major", render_mode="ansi")
obs, info = env.reset(seed=0)
terminated = total = 0
while not terminated:
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    total += reward
print(env.render())
print(f"return {total:.1f}, last step's terms: {info['reward_terms']}")
env.unwrapped.to_midi("quickstart.mid")
