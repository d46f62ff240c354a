"""Fixed texts for MiniLM parity and retrieval checks (written for these tests)."""

from __future__ import annotations

# 60 sentences: short and long, questions, numbers, punctuation, non-English, emoji.
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The cat sits outside on the mat.",
    "The new movie is awesome, everyone should watch it this weekend!",
    "The new movie is so great that I watched it twice.",
    "Do you like pizza?",
    "How do I reset my password if I no longer have access to my email?",
    "What is the capital city of Australia?",
    "Canberra was chosen as a compromise between Sydney and Melbourne.",
    "Stock markets fell sharply after the central bank raised interest rates again.",
    "Inflation in the euro area slowed to 2.4% in November.",
    "The quarterly report showed revenue of $4.2 billion, up 12% year over year.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Mitochondria are the powerhouse of the cell.",
    "The Pythagorean theorem relates the sides of a right triangle: a^2 + b^2 = c^2.",
    "Water boils at 100 degrees Celsius at sea level.",
    "Quantum computers use qubits, which can be in a superposition of states.",
    "Python's global interpreter lock prevents threads from running bytecode in parallel.",
    "Use `pip install --only-binary=:all:` to avoid building packages from source.",
    "The Lambda function timed out after 30 seconds while loading the model.",
    "Kubernetes restarts containers whose liveness probe fails.",
    "Please remember to water the plants while I am away on holiday.",
    "My flight to Lisbon was delayed by three hours because of fog.",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
    "She finished the marathon in just under four hours.",
    "The referee blew the whistle and the match ended in a draw.",
    "Heavy rain is expected across the north of the country tomorrow.",
    "The museum's new exhibition features paintings from the Dutch Golden Age.",
    "He plays the piano every evening after dinner.",
    "Our team shipped the new search feature a week ahead of schedule.",
    "Customer support is available 24/7 via chat and email.",
    "I can't believe it's already December!",
    "The library will be closed on public holidays.",
    "Le chat dort sur le canapé depuis ce matin.",
    "Der Zug nach Berlin fährt um acht Uhr ab.",
    "El perro corre por el parque todas las mañanas.",
    "東京は日本の首都です。",
    "Great job on the presentation 🎉👏",
    "ok",
    "???",
    "1234567890",
    "https://example.com/docs/getting-started?lang=en#install",
    "The mitochondria, the nucleus and the ribosomes are all organelles found inside"
    " eukaryotic cells, each with a distinct role in keeping the cell alive.",
    "After years of negotiation, the two companies finally agreed to merge, creating the"
    " largest logistics provider in the region, with more than forty thousand employees and"
    " operations in thirty countries.",
    "In the beginning the universe was created. This has made a lot of people very angry"
    " and been widely regarded as a bad move.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was"
    " the age of foolishness, it was the epoch of belief, it was the epoch of incredulity.",
    "Wash your hands thoroughly with soap and warm water for at least twenty seconds.",
    "The spacecraft entered orbit around Mars after a seven-month journey.",
    "Bitcoin's price swung wildly during the weekend trading session.",
    "Reading before bed helps me fall asleep faster.",
    "The orchestra tuned their instruments before the concert began.",
    "A hot cup of tea on a cold winter morning.",
    "Scientists discovered a new species of frog in the rainforest.",
]

# A small retrieval set: each query's intended answer is CORPUS[ANSWERS[i]].
CORPUS = [
    "To change your password, open Settings, choose Security and click 'Reset password'.",
    "Our office is open Monday to Friday from 9am to 5pm.",
    "Refunds are issued to the original payment method within 5 business days.",
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Canberra is the capital city of Australia.",
    "Penguins are flightless birds that live mostly in the Southern Hemisphere.",
    "A balanced diet includes fruits, vegetables, whole grains and protein.",
    "Lambda functions can use up to five layers and 250 MB of unzipped code.",
    "The football final ended 2-1 after extra time.",
    "Boil the pasta for ten minutes, then drain and add the sauce.",
]
QUERIES = [
    "How can I reset my password?",
    "When are you open?",
    "How long does it take to get my money back?",
    "Which famous landmark is in Paris?",
    "What is Australia's capital?",
    "Can penguins fly?",
    "What should I eat to stay healthy?",
    "What are the size limits for AWS Lambda deployments?",
    "Who won the football final?",
    "How do I cook spaghetti?",
]
ANSWERS = list(range(10))
