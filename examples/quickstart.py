import gymnasium as gym

import melody_env  # registers melody_env/MelodyComposition-v0

env = gym.make("melody_env/MelodyComposition-v0", key="G major", render_mode="ansi")
obs, info = env.reset(seed=0)
terminated = False
while not terminated:
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
print(env.render())  # a text piano roll
env.unwrapped.to_midi("melody.mid")  # pretty_midi, 80 QPM
